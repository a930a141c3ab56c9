"""Move the 30 REDS validation clips into the training folders as clips 240-269 (REDS4 protocol).

Example:
    python src/scripts/regroup_reds_dataset.py --root data/REDS

For each pair (``train_sharp``, ``val_sharp``) and (``train_sharp_bicubic/X4``, ``val_sharp_bicubic/X4``)
found under ``--root``, ``val/<NNN>`` is renamed to ``train/<NNN + 240>``. Each clip is one rename, so
the script can be run again after an interruption and does nothing once the data are regrouped.
It refuses (exit 2, nothing moved) when the folders do not look like REDS.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

PAIRS = [("train_sharp", "val_sharp"), ("train_sharp_bicubic/X4", "val_sharp_bicubic/X4")]
OFFSET, NUM_VAL = 240, 30


class LayoutError(ValueError):
    pass


def _clips(folder):
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def plan(root):
    """``[(src, dst)]`` renames still to do; raises :class:`LayoutError` before anything is moved."""
    moves, seen = [], 0
    for train_rel, val_rel in PAIRS:
        train, val = os.path.join(root, train_rel), os.path.join(root, val_rel)
        if not os.path.isdir(train):
            if os.path.isdir(val):
                raise LayoutError(f"{val} exists but {train} does not; not a REDS layout")
            continue
        seen += 1
        clips = _clips(train)
        bad = [c for c in clips if not (len(c) == 3 and c.isdigit() and int(c) < OFFSET + NUM_VAL)]
        if bad:
            raise LayoutError(f"{train}: folder '{bad[0]}' is not a REDS clip (000-269)")
        val_clips = _clips(val) if os.path.isdir(val) else []
        bad = [c for c in val_clips if not (len(c) == 3 and c.isdigit() and int(c) < NUM_VAL)]
        if bad:
            raise LayoutError(f"{val}: folder '{bad[0]}' is not a REDS validation clip (000-029)")
        for clip in val_clips:
            dst = os.path.join(train, f"{int(clip) + OFFSET:03d}")
            if os.path.exists(dst):
                raise LayoutError(f"{dst} already exists and {os.path.join(val, clip)} too; resolve by hand")
            moves.append((os.path.join(val, clip), dst))
        if not val_clips and not any(int(c) >= OFFSET for c in clips):
            raise LayoutError(f"{val}: REDS validation clips not found and {train} has no clips 240-269")
    if not seen:
        raise LayoutError(f"{root}: no train_sharp/ folder; not a REDS root")
    return moves


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="REDS root holding train_sharp/ and val_sharp/")
    args = parser.parse_args(argv)
    from mindediting.utils.cli import run_cli

    return run_cli(lambda: regroup(args.root), errors=(LayoutError,))


def regroup(root):
    if not os.path.isdir(root):
        raise LayoutError(f"{root}: folder not found")
    moves = plan(root)
    for src, dst in moves:
        os.rename(src, dst)
    for _, val_rel in PAIRS:
        val = os.path.join(root, val_rel)
        while os.path.isdir(val) and not os.listdir(val) and os.path.abspath(val) != os.path.abspath(root):
            os.rmdir(val)
            val = os.path.dirname(val)
    print(f"moved {len(moves)} clip folder(s)" if moves else "already regrouped: nothing to do")


if __name__ == "__main__":
    sys.exit(main())
