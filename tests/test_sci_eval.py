"""SCI evaluation end to end on the shipped benchmark scenes with GAP-TV (and MetaSCI from a ckpt)."""
import json
import os

import cv2
import numpy as np
import pytest
import scipy.io as sio

from mindediting.config import load_config
from mindediting.data.sci import load_sixgray_scene
from mindediting.engine import sci_task
from mindediting.engine.sci_eval import SCIEvalError, run_sci_eval
from mindediting.metrics_sci import sci_scene_scores
from mindediting.models.sci_classic import GAPTV
from tests.golden import golden_dir, shared_data

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _cfg(name, *overrides):
    sim = shared_data("sci", "simulation")
    mask = shared_data("sci", "mask", "mask.mat")
    return load_config(os.path.join(REPO, "configs", name), [f"data.root={sim}", f"data.mask_path={mask}", *overrides])


def _read_gif(path):
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return [np.array(f.convert("L")) for f in ImageSequence.Iterator(im)]


def test_gap_tv_eval_on_shipped_scenes(tmp_path):
    cfg = _cfg("sci/gap_tv_sixgray.yaml", "eval.sci_solver_args.iter_list=[2]")
    res = run_sci_eval(cfg, output_dir=str(tmp_path))
    rows = {r["name"]: r for r in res["scenes"]}
    assert [r["name"] for r in res["scenes"]] == ["kobe", "traffic", "runner", "drop", "aerial", "vehicle"]
    assert res["missing"] == ["kobe", "aerial", "vehicle"]
    assert all(rows[n]["status"] == "missing" for n in res["missing"])
    assert "kobe" in res["table"] and "missing (file not found)" in res["table"]
    assert rows["traffic"]["num_meas"] == 6 and len(rows["traffic"]["frame_psnr"]) == 48
    # the drop row is exactly the toolbox score of an independent 2-iteration GAP-TV run
    scene = load_sixgray_scene(shared_data("sci", "simulation", "drop8_cacti.mat"), shared_data("sci", "mask", "mask.mat"))
    out = GAPTV(iter_list=[2])(scene["meas"][:, None], scene["mask"][None], scene["mask_s"][None, None])
    psnr, ssim = sci_scene_scores(scene["gt"], out)
    assert rows["drop"]["psnr"] == pytest.approx(psnr, abs=1e-9) and rows["drop"]["ssim"] == pytest.approx(ssim, abs=1e-9)
    assert res["mean_psnr"] == pytest.approx(np.mean([rows[n]["psnr"] for n in ("traffic", "runner", "drop")]))
    # PNG frames re-read: 8 for drop, the clipped reconstruction rounded to uint8
    png = cv2.imread(str(tmp_path / "drop" / "0003.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png, (np.clip(out[0, 3], 0, 1) * 255 + 0.5).astype(np.uint8))
    assert len(os.listdir(tmp_path / "traffic")) == 48
    # side-by-side GIF: ground truth | gap | reconstruction
    frames = _read_gif(tmp_path / "drop.gif")
    assert len(frames) == 8 and frames[0].shape == (256, 2 * 256 + 4)
    np.testing.assert_array_equal(frames[2][:, :256], (scene["gt"][0, 2] * 255 + 0.5).astype(np.uint8))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["scenes"][3]["psnr"] == pytest.approx(rows["drop"]["psnr"])
    assert saved["table"].startswith("SCI evaluation: gap_tv (iterations 2)")
    csv_rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv_rows[0] == "name,status,num_meas,psnr,ssim,time_per_meas"
    drop = [r for r in csv_rows if r.startswith("drop,")][0].split(",")
    assert float(drop[3]) == pytest.approx(rows["drop"]["psnr"], abs=1e-6)


def test_full_gap_tv_reproduces_toolbox_psnr_on_drop(tmp_path):
    """40 iterations as cacti configs/TV; the TV README reports Drop 34.50 dB / 0.9668."""
    cfg = _cfg("sci/gap_tv_sixgray.yaml", "data.scenes=[drop]", "eval.video=mp4", "eval.save_frames=false")
    res = run_sci_eval(cfg, output_dir=str(tmp_path))
    row = res["scenes"][0]
    assert row["psnr"] == pytest.approx(34.50, abs=0.01) and row["ssim"] == pytest.approx(0.9668, abs=2e-4)
    cap = cv2.VideoCapture(str(tmp_path / "drop.mp4"))
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        count += 1
        assert frame.shape == (256, 516, 3)
    assert count == 8 and not (tmp_path / "drop").exists()


def test_real_data_with_a_mask_file(tmp_path):
    real = shared_data("sci", "real_data", "cr10")
    mask_path = tmp_path / "real_mask.mat"
    sio.savemat(mask_path, {"mask": np.random.RandomState(0).randint(0, 2, (512, 512, 10)).astype(np.uint8)})
    cfg = load_config(
        os.path.join(REPO, "configs", "sci", "gap_tv_real_cr10.yaml"),
        [f"data.root={real}", f"data.mask_path={mask_path}", "data.scenes=[waterBalloon, cat]",
         "eval.sci_solver_args.iter_list=[1]"],
    )
    res = run_sci_eval(cfg, output_dir=str(tmp_path / "out"))
    row = res["scenes"][0]
    assert row["name"] == "meas_waterBalloon_cr_10" and row["num_meas"] == 1 and row["time_per_meas"] > 0
    assert "psnr" not in row and res["missing"] == ["cat"] and res["mean_psnr"] is None
    assert len(os.listdir(tmp_path / "out" / "meas_waterBalloon_cr_10")) == 10
    assert _read_gif(tmp_path / "out" / "meas_waterBalloon_cr_10.gif")[0].shape == (512, 512)
    # the shipped 256x256 toolbox mask does not fit the 512x512 measurement
    bad = load_config(
        os.path.join(REPO, "configs", "sci", "gap_tv_real_cr10.yaml"),
        [f"data.root={real}", f"data.mask_path={shared_data('sci', 'mask', 'mask.mat')}"],
    )
    with pytest.raises(ValueError, match=r"mask.mat: key 'mask' has shape \(256, 256, 8\)"):
        run_sci_eval(bad, output_dir=str(tmp_path / "bad"))


def test_cli_reports_bad_settings(tmp_path, capsys):
    from src.scripts.sci_eval import main

    code = main(["--config_path", os.path.join(REPO, "configs", "sci", "gap_tv_sixgray.yaml"),
                 f"data.root={tmp_path}", "data.mask_path=nothere.mat"])
    assert code == 2
    assert "error: nothere.mat: file not found" in capsys.readouterr().err
    cfg = _cfg("sci/gap_tv_sixgray.yaml", "eval.sci_solver=tv")
    with pytest.raises(SCIEvalError, match="eval.sci_solver is 'tv', expected one of gap_tv, admm_tv"):
        run_sci_eval(cfg, output_dir=str(tmp_path))


def test_metasci_checkpoint_eval(tmp_path):
    from mindediting.convert.converter import load_and_convert, save_ckpt
    from mindediting.models.metasci import convert_state_dict

    folder = golden_dir("metasci", need=("weights.pth",))
    ckpt = save_ckpt(load_and_convert(f"{folder}/weights.pth", convert_state_dict), tmp_path / "metasci.ckpt")
    small_mask = tmp_path / "mask64.mat"  # the loader crops the frames to the mask: a 64x64 run
    sio.savemat(small_mask, {"mask": sio.loadmat(shared_data("sci", "mask", "mask.mat"))["mask"][:64, :64]})
    cfg = _cfg("metasci/metasci_sixgray.yaml", "data.scenes=[drop]", "eval.video=none", f"data.mask_path={small_mask}")
    res = sci_task.evaluate(cfg, ckpt=str(ckpt), output_dir=str(tmp_path / "out"))
    row = res["scenes"][0]
    assert res["solver"] == "metasci (metasci.ckpt)" and row["status"] == "ok"
    # synthetic (untrained) weights: the numbers are only checked for being computed on 8 frames
    assert len(row["frame_psnr"]) == 8 and np.isfinite(row["psnr"])
    assert len(os.listdir(tmp_path / "out" / "drop")) == 8
    # a mask with another compression ratio is refused with the key named
    mask4 = tmp_path / "mask4.mat"
    sio.savemat(mask4, {"mask": sio.loadmat(shared_data("sci", "mask", "mask.mat"))["mask"][:64, :64, :4]})
    cfg4 = _cfg("metasci/metasci_sixgray.yaml", "data.scenes=[drop]", "eval.video=none", f"data.mask_path={mask4}")
    with pytest.raises(SCIEvalError, match="data.mask_path: the mask has 4 frames but metasci reconstructs 8"):
        sci_task.evaluate(cfg4, ckpt=str(ckpt), output_dir=str(tmp_path / "out4"))


@pytest.mark.parametrize("name", ["sci/gap_tv_sixgray.yaml", "sci/gap_tv_real_cr10.yaml", "metasci/metasci_sixgray.yaml",
                                  "metasci/metasci_davis.yaml"])
def test_configs_validate(name):
    cfg = load_config(os.path.join(REPO, "configs", name))
    assert cfg["model"]["name"] == "metasci" and cfg["data"]["mask_path"].startswith("data/sci/mask/")


def test_efficientsci_checkpoint_eval_uses_the_last_list_output(tmp_path):
    """Another SCI network through the same evaluation: EfficientSCI returns a list (last element used)."""
    import mindspore as ms

    from mindediting.convert.converter import load_and_convert, save_ckpt
    from mindediting.models.efficientsci import convert_state_dict
    from mindediting.models import build_model

    folder = golden_dir("efficientsci_fp", need=("weights.pth",))
    ctor = {"in_ch": 8, "units": 2, "group_num": 2, "color_ch": 1}
    ckpt = save_ckpt(load_and_convert(f"{folder}/weights.pth", convert_state_dict, **ctor), tmp_path / "effsci.ckpt")
    small_mask = tmp_path / "mask32.mat"
    sio.savemat(small_mask, {"mask": sio.loadmat(shared_data("sci", "mask", "mask.mat"))["mask"][:32, :32]})
    overrides = ["model.name=efficientsci", "model.args={in_ch: 8, units: 2, group_num: 2, color_ch: 1}",
                 "data.scenes=[drop]", "eval.video=none", "eval.save_frames=false", f"data.mask_path={small_mask}"]
    res = sci_task.evaluate(_cfg("metasci/metasci_sixgray.yaml", *overrides), ckpt=str(ckpt),
                           output_dir=str(tmp_path / "o"))
    row = res["scenes"][0]
    # the same numbers as a direct forward of the converted net on the drop crop
    scene = load_sixgray_scene(shared_data("sci", "simulation", "drop8_cacti.mat"), str(small_mask))
    net = build_model("efficientsci", **ctor)
    ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)))
    out = net(*[ms.Tensor(a.astype(np.float32)) for a in (scene["meas"][:, None], scene["mask"][None], scene["mask_s"][None, None])])
    psnr, ssim = sci_scene_scores(scene["gt"], out[-1].asnumpy())
    assert row["psnr"] == pytest.approx(psnr, abs=1e-6) and row["ssim"] == pytest.approx(ssim, abs=1e-6)
