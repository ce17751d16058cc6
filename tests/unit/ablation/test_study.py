"""What an ablation study accepts, and what each of its trials leaves out of data and model."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from maggy import InvalidParameterError
from maggy.ablation import Ablation, AblationStudy
from maggy.ablation.table import ablation_table
from maggy.result import Result
from maggy.trial import Trial, TrialState

torch = pytest.importorskip("torch")


def model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))


@pytest.mark.parametrize("kwargs, fragment", [
    ({}, "The ablation study is empty"),
    ({"features": ["a", "a"]}, "features names ['a'] more than once"),
    ({"features": "a"}, "features must be a list of non-empty names"),
    ({"features": ["a"], "components": ["a"]}, "['a'] are named both as features and as components"),
    ({"features": ["a"], "groups": {"g": ["b"]}}, "groups['g'] names ['b'], which are neither in features nor"),
    ({"features": ["a"], "groups": {"g": []}}, "groups['g'] is empty"),
    ({"components": ["1"], "replacements": {"2": torch.nn.Identity}}, "replacements name ['2']"),
    ({"features": ["a", "zz"], "columns": pd.DataFrame(columns=["a", "b"])}, "features ['zz'] are not columns"),
    ({"components": ["9"], "model": model}, "components ['9'] are not submodules of the model"),
])
def test_a_study_that_cannot_run_is_refused_with_the_reason(kwargs, fragment):
    with pytest.raises(InvalidParameterError) as err:
        AblationStudy(**kwargs)
    assert fragment in str(err.value)


def test_drop_takes_the_left_out_columns_out_of_pandas_and_pyarrow():
    frame = pd.DataFrame({"a": [1], "b": [2], "c": [3]})
    study = AblationStudy(features=["a", "b"], groups={"ab": ["a", "b"]}, columns=frame)
    assert list(study.ablation("feature:a").drop(frame).columns) == ["b", "c"]
    assert study.ablation("group:ab").drop(pa.Table.from_pandas(frame)).column_names == ["c"]
    assert list(study.ablation("base").drop(frame).columns) == ["a", "b", "c"]
    with pytest.raises(KeyError, match=r"ablation 'a' leaves out \['a'\], which the data does not have"):
        study.ablation("feature:a").drop(frame[["b"]])


def test_apply_replaces_exactly_the_left_out_submodules():
    study = AblationStudy(components=["2", "1"], replacements={"1": torch.nn.Tanh}, model=model)
    dropped = study.ablation("component:2").apply(model())
    assert [type(m).__name__ for m in dropped] == ["Linear", "ReLU", "Identity", "Linear"]
    replaced = study.ablation("component:1").apply(model())
    assert [type(m).__name__ for m in replaced] == ["Linear", "Tanh", "Dropout", "Linear"]
    assert replaced(torch.zeros(2, 3)).shape == (2, 1)
    with pytest.raises(KeyError, match="which the model does not have"):
        Ablation("x", "component", components=("9",)).apply(model())


def test_bind_hands_train_fn_the_ablation_of_its_trial():
    seen = []
    study = AblationStudy(features=["a"])
    bound = study.bind(lambda ablation, reporter=None: seen.append((ablation.name, ablation.features, reporter)))
    bound(ablation="feature:a", reporter="r")
    bound(ablation="base")
    assert seen == [("a", ("a",), "r"), (None, (), None)]


def test_the_table_orders_removals_by_harm_in_the_metrics_direction():
    trials = [Trial(n, {"ablation": n}, state=TrialState.FINALIZED, metric=m, start=i)
              for i, (n, m) in enumerate([("base", 1.0), ("feature:a", 3.0), ("feature:b", 1.5), ("group:ab", 0.5)])]
    trials.append(Trial("c", {"ablation": "component:c"}, state=TrialState.ERROR, start=9))
    table = ablation_table(Result.of("s", "min", trials, ["ablation"], "/tmp/s", {}))  # a loss: lower is better
    assert table["ablated"].tolist() == ["a", "b", None, "ab", "c"]
    assert table["delta"].tolist()[:4] == [-2.0, -0.5, 0.0, 0.5] and pd.isna(table["delta"].iloc[4])
    assert table["kind"].tolist() == ["feature", "feature", None, "group", "component"]
    with pytest.raises(AttributeError, match="not an ablation study's"):
        _ = Result.of("s", "min", [], ["x"], "/tmp/s", {}).ablation
