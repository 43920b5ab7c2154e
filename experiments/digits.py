"""The digits data: scikit-learn's bundled digits (1,797 gray 8x8 images, 10 classes; no download).

Two fixed splits:
- closed set: stratified 75/25 train/test over all 10 classes (`train_test_split(..., random_state=0)`);
- open set: train on the closed-set training images of digits 0-5; verify on ALL images of the unseen digits
  6-9 (every pair of them), as a face model is tested on people it never saw.
"""

import hashlib

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEEN_CLASSES = (0, 1, 2, 3, 4, 5)
UNSEEN_CLASSES = (6, 7, 8, 9)
SPLIT_SEED = 0


def load_splits() -> dict:
    """The fixed splits as numpy arrays; pixels scaled to [0, 1]."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=SPLIT_SEED)
    seen_train = train_idx[np.isin(y[train_idx], SEEN_CLASSES)]
    seen_test = test_idx[np.isin(y[test_idx], SEEN_CLASSES)]
    unseen = np.flatnonzero(np.isin(y, UNSEEN_CLASSES))
    return {
        "x": x,
        "y": y,
        # split name -> (training indices, held-out indices used for the per-epoch accuracy)
        "closed": (np.sort(train_idx), np.sort(test_idx)),
        "open": (np.sort(seen_train), np.sort(seen_test)),
        "unseen": unseen,
    }


def split_fingerprint(data: dict) -> str:
    h = hashlib.sha256(data["x"].tobytes() + data["y"].tobytes() + data["unseen"].tobytes())
    for split in ("closed", "open"):
        for idx in data[split]:
            h.update(idx.tobytes())
    return h.hexdigest()
