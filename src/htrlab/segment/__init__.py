"""Finding text lines in page, paragraph and photo images, and writing them as PAGE-XML or ALTO."""

from htrlab.data.layout import PageLayout, TextLine
from htrlab.segment.lines import SegmentConfig, segment_lines

__all__ = ["PageLayout", "SegmentConfig", "TextLine", "segment_lines"]
