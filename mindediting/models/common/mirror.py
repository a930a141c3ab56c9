"""Mirror-extended clips (mmagic's Vimeo-90K-T test mirrors the 7 frames to 14): recurrent SR networks reuse the
backward flows for the forward pass when the second half of the clip is the first half reversed."""
from mindspore import ops


def is_mirror_extended(clip):
    """True when ``clip`` (N, T, C, H, W) has even T and its second half is exactly the first half reversed in
    time. A host-side test (it reads a value): off in graph mode and in compiled stages."""
    t = clip.shape[1]
    if t % 2:
        return False
    first, second = clip[:, : t // 2], clip[:, t // 2:]
    return bool((ops.abs(first - second[:, ::-1]).max() == 0).asnumpy())
