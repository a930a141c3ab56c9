"""What a person watches of a run: durations for ETAs and the loss / validation-PSNR curve PNG."""
import json
import time

import numpy as np

from mindediting.utils.atomic import write_bytes_atomic


def format_duration(seconds):
    """``1d 02:03:04`` / ``02:03:04``: ETAs of long runs exceed a day."""
    seconds = int(round(max(0.0, seconds)))
    days, rest = divmod(seconds, 86400)
    text = time.strftime("%H:%M:%S", time.gmtime(rest))
    return f"{days}d {text}" if days else text


def write_curves(log_path, png_path, title="", metric="psnr", label="validation PSNR (dB)"):
    """Training loss (per iteration, and its running mean) and the validation ``metric`` from a JSON-lines log,
    as a PNG written atomically (a viewer never sees half a file). Skipped, with no error, when the log has no
    loss yet."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train, val = [], []
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run
            if "loss" in entry:
                train.append((entry["iter"], entry["loss"]))
            elif "val" in entry and metric in entry["val"]:
                val.append((entry["iter"], entry["val"][metric]))
    if not train:
        return None
    # the pyplot-free API: no global figure state, no GUI backend in a training process
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_psnr = fig.subplots(1, 2)
    iters, loss = np.array(train, dtype=np.float64).T
    ax_loss.plot(iters, loss, lw=0.5, alpha=0.4, label="loss")
    window = max(1, len(loss) // 50)
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(iters[window - 1:], smooth, lw=1.5, label=f"mean of {window}")
    if np.all(loss > 0):
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="iteration", ylabel="training loss")
    ax_loss.legend()
    if val:
        v_iters, values = np.array(val, dtype=np.float64).T
        ax_psnr.plot(v_iters, values, "o-")
    else:  # said in the panel, so an empty axis is not mistaken for a failed plot
        ax_psnr.text(0.5, 0.5, "no validation in this log yet", ha="center", va="center",
                     transform=ax_psnr.transAxes)
        ax_psnr.set(xticks=[], yticks=[])
    ax_psnr.set(xlabel="iteration", ylabel=label)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return write_bytes_atomic(png_path, buffer.getvalue())
