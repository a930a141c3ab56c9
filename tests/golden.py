"""Locate golden test vectors: a copy under tests/data/golden/<case>, else ../shared/golden/<case>."""
import json
import os

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LOCAL = os.path.join(REPO, "tests", "data", "golden")
SHARED = os.path.join(REPO, "..", "shared", "golden")
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")


def golden_dir(case, need=()):
    """Folder holding golden ``case`` with every file in ``need``; skip the test when absent."""
    for root in (LOCAL, SHARED):
        folder = os.path.join(root, case)
        if os.path.isdir(folder) and all(os.path.exists(os.path.join(folder, n)) for n in need):
            return folder
    pytest.skip(f"golden '{case}' not found in tests/data/golden or ../shared/golden (needs ../shared beside the repo)")


def shared_data(*parts):
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{path} not found: real data lives in ../shared/data beside the repo")
    return path


def load_config(folder):
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        return json.load(handle)


def load(folder, name):
    return np.load(os.path.join(folder, name))
