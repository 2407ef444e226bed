"""The ID-card reader's settings: detection passes, recognition size, and the thresholds for glare, blur and cut-off."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReaderConfig:
    det_locate_side: int = 480
    det_level: bool = True  # turn the photo by its stroke angle before the first pass
    det_level_min_deg: float = 8.0
    det_relocate_side: int = 640
    det_crop_to_edges: bool = True  # first passes only look where the photo has strong edges
    retry_unlevelled: bool = True  # no number from the levelled view: look again without it
    det_diagonal_deg: float = 0.0
    det_fallback_side: int = 960
    det_target_text_px: float = 15.0
    det_pad_x: float = 0.15  # of the first pass's text span: it finds the rows' ends, it may miss whole rows
    det_pad_y: float = 0.3
    # A first pass whose text is as tall as the card's text block (for its width) missed no row: the second
    # pass then needs only a margin around it, a third fewer pixels (same reading on 400 A/B cards, −7 ms).
    det_whole_height: float = 0.9
    det_whole_min_lines: int = 5
    det_whole_pad_x: float = 0.10
    det_whole_pad_y: float = 0.12
    min_first_pass_text_px: float = 8.0
    min_first_pass_lines: int = 10
    min_first_pass_aspect: float = 9.0  # a number-like line: the first pass boxed the 18 digits as one
    det_max_zoom: float = 1.5
    det_max_second: int = 1100
    cls_lines: int = 4
    # Line crops are recognised 40 px high, not at the model's 48: a third less work. Narrow digits suffer most
    # (an X read as 8; now and then a digit of an address dropped): the number line and re-reads keep 48.
    rec_height: int = 40
    rec_squeeze: float = 0.9  # and 10% narrower (not the number): the same reading on 450 A/B cards, −6 ms
    glare_threshold: float = 0.12
    blur_threshold: float = 0.35
    cut_off_margin: float = 0.07  # fraction of the card width a corner may lie outside the photo
    portrait_margin: float = 0.08
