"""Language models for decoding."""

from htrlab.lm.ngram import CharNgram, build_char_ngram

__all__ = ["CharNgram", "build_char_ngram"]
