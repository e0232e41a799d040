"""Synthetic handwriting-like lines rendered from text with handwriting fonts."""

from htrlab.synth.render import FontInfo, SynthConfig, find_fonts, generate, load_corpus, render_text

__all__ = ["FontInfo", "SynthConfig", "find_fonts", "generate", "load_corpus", "render_text"]
