"""Tune a small softmax classifier with maggy on Spark local mode.

    ./scripts/demo            # or: .venv/bin/python examples/quickstart.py [--trials N]

Each trial trains for 15 epochs and reports validation accuracy every epoch, so the median
stopping rule can end poor trials early.
"""

from __future__ import annotations

import argparse

import numpy as np

from maggy import HyperparameterOptConfig, Searchspace, experiment


def make_data(seed: int = 0, n: int = 24000, features: int = 40, classes: int = 6):
    """A noisy, partly overlapping classification problem."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.6, size=(classes, features))
    y = rng.integers(classes, size=n)
    x = centers[y] + rng.normal(scale=2.0, size=(n, features))
    return x[:20000], y[:20000], x[20000:], y[20000:]


def train(lr, l2, batch_size, reporter):
    """Softmax regression trained with minibatch SGD; returns validation accuracy."""
    x, y, xv, yv = make_data()
    rng = np.random.default_rng(batch_size)
    w = np.zeros((x.shape[1], int(y.max()) + 1))
    acc = loss = 0.0
    for epoch in range(15):
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // batch_size)):
            logits = x[idx] @ w
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            w -= lr * (x[idx].T @ p / len(idx) + l2 * w)
        logits = xv @ w
        logp = logits - logits.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        loss = float(-logp[np.arange(len(yv)), yv].mean())
        acc = float((logits.argmax(axis=1) == yv).mean())
        reporter.broadcast(metric=acc, step=epoch)
    return {"metric": acc, "val_loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--resume", action="store_true",
                        help="continue the last quickstart experiment (after Ctrl-C) instead of starting a new one")
    args = parser.parse_args()
    sp = Searchspace(lr=("DOUBLE", [1e-4, 1.0], "log"), l2=("DOUBLE", [1e-6, 1e-1], "log"),
                     batch_size=("DISCRETE", [16, 32, 64, 128]))
    config = HyperparameterOptConfig(searchspace=sp, num_trials=args.trials, direction="max",
                                     name="quickstart", es_min=4, es_interval=0.5, hb_interval=0.5, seed=1,
                                     resume="auto" if args.resume else False)
    result = experiment.lagom(train, config)
    print(result.summary())
    print(result.trials[["trial_id", "state", "lr", "l2", "batch_size", "metric", "val_loss",
                         "steps", "duration", "worker"]].to_string(index=False))


if __name__ == "__main__":
    main()
