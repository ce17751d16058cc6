"""Tune a small PyTorch network on scikit-learn's digits with maggy, as a scheduled Spark job.

    spark-submit --master "$SPARK_MASTER" examples/tune_digits_torch.py \\
        --experiment-dir "$HDFS_URI/experiments" [--register digits-mlp] [--trials 6]

The experiment directory may be local, hdfs:// (with WEBHDFS_URL or HADOOP_CONF_DIR set) or
webhdfs://. With MLFLOW_TRACKING_URI set, every trial is an MLflow run holding its model, and
--register hands the best model to the MLflow model registry under the alias "champion".

A job whose trials all fail exits non-zero (lagom raises), and so does the same job run again
(a scheduler's retry): it raises the stored error without running anything, unless
--retry-failed runs the failed trials again.
"""

from __future__ import annotations

import argparse
import json

from maggy import HyperparameterOptConfig, Searchspace, experiment


def train(lr, hidden, dropout, reporter):
    """An MLP on 8x8 digits; reports validation accuracy each epoch and logs the model to MLflow."""
    import mlflow
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    xt, xv, yt, yv = train_test_split(x / 16.0, y, test_size=0.3, random_state=0)
    xt, xv = torch.tensor(xt, dtype=torch.float32), torch.tensor(xv, dtype=torch.float32)
    yt, yv = torch.tensor(yt), torch.tensor(yv)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                torch.nn.Linear(hidden, 10))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    acc = 0.0
    for epoch in range(8):
        model.train()
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xv).argmax(dim=1) == yv).float().mean().item()
        reporter.broadcast(acc, step=epoch)
    if mlflow.active_run() is not None:  # maggy opened this trial's MLflow run
        mlflow.pytorch.log_model(model, name="model", input_example=xv[:2].numpy())
    return {"metric": acc, "params": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment-dir", default=None)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--register", default=None, help="registered model name for the best model")
    parser.add_argument("--retry-failed", action="store_true",
                        help="run the failed trials of the experiment again (else a failed one fails again)")
    args = parser.parse_args()
    sp = Searchspace(lr=("DOUBLE", [1e-3, 3e-2], "log"), hidden=("INTEGER", [16, 128], "log"),
                     dropout=("DOUBLE", [0.0, 0.5]))
    config = HyperparameterOptConfig(searchspace=sp, optimizer="tpe", num_trials=args.trials, direction="max",
                                     name="digits-torch", experiment_dir=args.experiment_dir,
                                     register_model=args.register, es_policy="none", seed=0,
                                     retry_failed=args.retry_failed)
    result = experiment.lagom(train, config)
    print(result.summary())
    print("RESULT " + json.dumps({"experiment_dir": result.experiment_dir, "best_run_id": result.best_run_id,
                                  "model_uri": result.model_uri, "best_metric": result.best_metric,
                                  "tracking": result.stats.get("tracking"),
                                  "spark_master": result.stats.get("spark_master"),
                                  "spark_app_id": result.stats.get("spark_app_id"),
                                  "workers": result.stats.get("workers"),
                                  "trials": json.loads(result.trials[["trial_id", "state", "metric"]]
                                                       .to_json(orient="records"))}))


if __name__ == "__main__":
    main()
