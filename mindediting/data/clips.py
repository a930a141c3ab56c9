"""The clip that every video test set yields and the evaluator scores: its own module so that the generic test
sets (:mod:`.video_sr_test`) and the VRT ones (:mod:`.vrt_testsets`) share it without importing each other."""
from dataclasses import dataclass, field


@dataclass
class TestClip:
    """File paths of one clip; frames are read when the clip is evaluated."""

    name: str
    lq_files: list
    gt_files: list  # ground truth of the scored frames, aligned with ``score_indices``
    score_indices: list = field(default_factory=list)  # which output frames are scored
