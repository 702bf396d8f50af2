"""scikit-learn's 8x8 digits (the real image data available offline) and the small ANNs the demo, the
notebooks, the tests and the benchmarks train on it in seconds, with fixed seeds.

Split: ``train_test_split(test_size=0.3, random_state=0, stratify=y)``, pixels / 16, images ``[N, 1, 8, 8]``.

Example:
    >>> from neuro import digits
    >>> xtr, ytr, xte, yte = digits.digits_split()
    >>> tuple(xtr.shape), tuple(xte.shape)
    ((1257, 1, 8, 8), (540, 1, 8, 8))
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from neuro.convert import QCFS


def digits_split():
    """Train/test tensors of the digits with the split every test and benchmark uses."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    return torch.tensor(xtr), torch.tensor(ytr), torch.tensor(xte), torch.tensor(yte)


def act(kind):
    """The activation: QCFS (4 levels) or ReLU."""
    return QCFS(levels=4, init_lambda=2.0) if kind == "qcfs" else nn.ReLU()


def cnn(pool="avg", activation="relu"):
    """conv-BN-act-pool x2 + linear; ``pool`` avg or max, ``activation`` relu or qcfs."""
    P = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), act(activation), P(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), act(activation), P(2),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(32 * 4, 10))


def mlp():
    """64-128-64-10 ReLU MLP."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


class ResNet(nn.Module):
    """Small residual network with functional relu, an addition and torch.flatten (traced by fx)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(16)
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(16 * 16, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        x = F.relu(x + y)
        x = self.pool(x)
        return self.fc(torch.flatten(x, 1))


def train(model, xtr, ytr, epochs=30, lr=3e-3, seed=0, batch=64, progress=False):
    """AdamW with a one-cycle schedule and cross-entropy; returns the model in eval mode."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(xtr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    model.train()
    for _ in tqdm(range(epochs), desc="training ANN", disable=not progress, leave=False):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


def accuracy(model, x, y):
    """Test accuracy of an ANN."""
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())
