"""Realistic specialists (``data: realistic``): ``SpecialistPairs`` mixes the task's benchmark
degradation, its realistic condition and clean frames in the stated shares, reproducibly;
``synthetic_pairs`` and ``training_split`` pick it and its photos."""

from __future__ import annotations

import numpy as np
import pytest
from train_helpers import random_images

from qdr_core.data.datasets import ConditionPairs, SpecialistPairs, SyntheticPairs
from qdr_core.data.degrade.pipeline import EFFECTS, ConditionMix
from qdr_core.errors import ConfigError, DataError
from qdr_core.tasks import AUTO_TASK, REALISTIC_EFFECT, TASKS
from qdr_core.train.trainer import synthetic_pairs, training_split


def test_every_task_has_a_realistic_condition() -> None:
    assert set(REALISTIC_EFFECT) == set(TASKS)
    assert set(REALISTIC_EFFECT.values()) <= set(EFFECTS)


def test_samples_depend_only_on_seed_and_index() -> None:
    a, b = (SpecialistPairs("noise", "sensor", random_images(2, 32), patch=16, seed=5) for _ in range(2))
    for i in (0, 7, 31):
        assert all(np.array_equal(x, y) for x, y in zip(a.sample(i), b.sample(i)))
    other = SpecialistPairs("noise", "sensor", random_images(2, 32), patch=16, seed=6)
    assert any(not np.array_equal(a.sample(i)[0], other.sample(i)[0]) for i in range(4))
    degraded, clean = a.batch(2, 3)
    assert degraded.shape == clean.shape == (3, 3, 16, 16)
    assert np.array_equal(degraded[1], a.sample(7)[0].transpose(2, 0, 1))


def test_shares_of_benchmark_realistic_and_clean_samples() -> None:
    n, benchmark, clean = 240, 0.3, 0.2
    pairs = SpecialistPairs(
        "noise", "sensor", random_images(2, 32), patch=16, seed=3, benchmark=benchmark, clean=clean
    )
    kinds = []
    for i in range(n):
        degraded, target = pairs.sample(i)
        if np.array_equal(degraded, target):
            kinds.append("clean")  # a clean frame is an identity pair
        elif np.array_equal(degraded, pairs.bench.sample(i)[0]):
            kinds.append("benchmark")
        else:
            kinds.append("realistic")
            if len(kinds) < 40:  # a few: the realistic samples are the task's condition alone
                stages = pairs.real.sample_with_record(i)[2]["stages"]
                assert [s["effect"] for s in stages if not s["implied"]] == ["sensor"]
    shares = {k: kinds.count(k) / n for k in ("benchmark", "realistic", "clean")}
    assert shares["benchmark"] == pytest.approx(benchmark, abs=0.05)
    assert shares["clean"] == pytest.approx(clean, abs=0.05)
    assert shares["realistic"] == pytest.approx(1 - benchmark - clean, abs=0.05)


@pytest.mark.parametrize("benchmark, clean", [(1.0, 0.0), (-0.1, 0.2), (0.3, 0.8), (0.3, -0.1)])
def test_bad_shares_are_data_errors(benchmark, clean) -> None:
    with pytest.raises(DataError, match="need 0 <= benchmark < 1"):
        SpecialistPairs("rain", "rain", random_images(2, 32), benchmark=benchmark, clean=clean)


@pytest.mark.parametrize("task", TASKS)
def test_synthetic_pairs_picks_the_data_kind(task) -> None:
    images = random_images(2, 32)
    assert type(synthetic_pairs(task, images, 16, 0)) is SyntheticPairs
    realistic = synthetic_pairs(task, images, 16, 0, "realistic")
    assert isinstance(realistic, SpecialistPairs)
    assert realistic.real.mix.effects == (REALISTIC_EFFECT[task],) and realistic.bench.task == task


def test_auto_and_unknown_data_kinds() -> None:
    assert isinstance(synthetic_pairs(AUTO_TASK, random_images(2, 32), 16, 0, "realistic"), ConditionPairs)
    with pytest.raises(ConfigError, match="unknown data 'photos'; choose benchmark, realistic"):
        synthetic_pairs("noise", random_images(2, 32), 16, 0, "photos")


@pytest.mark.parametrize(
    "task, data, split",
    [
        ("noise", "benchmark", "train"),
        ("haze", "realistic", "train_all"),
        (AUTO_TASK, "benchmark", "train_all"),
    ],
)
def test_training_split(task, data, split) -> None:
    assert training_split(task, data) == split


def test_condition_mix_parses_shares_and_weighted_effects() -> None:
    mix = ConditionMix.parse("clean=0.25, single=0.5, effects=fog+rain+night+sensor+sensor")
    assert (mix.clean, mix.single) == (0.25, 0.5) and mix.effects.count("sensor") == 2
    assert ConditionMix.parse("") == ConditionMix() and ConditionMix.parse("clean=0.3").single == 0.5
    rng = np.random.default_rng(0)
    drawn = [ConditionMix.parse("clean=0,single=1,effects=sensor+sensor+fog").sample(rng) for _ in range(300)]
    share = sum(c.effects[0][0] == "sensor" for c in drawn) / len(drawn)
    assert abs(share - 2 / 3) < 0.08
    for bad, message in (("clean=x", "not a number"), ("speed=1", "bad mix entry"), ("effects=smog", "smog"),
                         ("clean=0.8,single=0.5", r"clean \+ single <= 1")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            ConditionMix.parse(bad)


def test_auto_pairs_follow_the_mix_and_specialists_refuse_one() -> None:
    images = [np.full((64, 64, 3), 0.5, np.float32)]
    pairs = synthetic_pairs("auto", images, 32, 0, mix="clean=1,single=0")
    assert isinstance(pairs, ConditionPairs) and pairs.mix.clean == 1.0
    degraded, clean = pairs.sample(3)
    assert np.array_equal(degraded, clean)  # every sample is a clean identity pair
    with pytest.raises(ConfigError, match="--mix"):
        synthetic_pairs("noise", images, 32, 0, mix="clean=0.5")


def test_a_bench_share_mixes_in_the_papers_degradations_without_moving_other_mixes() -> None:
    mix = ConditionMix.parse("clean=0.2,single=0.5,bench=0.25,bench_tasks=noise+noise+haze")
    assert mix.bench == 0.25 and mix.bench_tasks == ("noise", "noise", "haze")
    assert ConditionMix.parse("").bench == 0.0 and ConditionMix().bench_tasks == TASKS
    images = [np.random.default_rng(1).random((96, 96, 3), dtype=np.float32)]
    pairs = ConditionPairs(images, patch=32, seed=4, mix=mix)
    records = [pairs.sample_with_record(i)[2] for i in range(240)]
    tasks = [r["benchmark_task"] for r in records if "benchmark_task" in r]
    assert abs(len(tasks) / len(records) - 0.25) < 0.07
    assert set(tasks) == {"noise", "haze"} and tasks.count("noise") > tasks.count("haze")
    # A benchmark sample is that task's training degradation of the (augmented) window: noise
    # changes every pixel a little, never the mean by much.
    i = next(i for i, r in enumerate(records) if r.get("benchmark_task") == "noise")
    degraded, clean = pairs.sample(i)
    assert 0.02 < np.abs(degraded - clean).mean() < 0.3
    # bench=0 is the mix without a bench share, sample for sample (it draws nothing from the stream).
    plain = ConditionPairs(images, patch=32, seed=4, mix=ConditionMix.parse("clean=0.2,single=0.5"))
    zero = ConditionPairs(images, patch=32, seed=4, mix=ConditionMix.parse("clean=0.2,single=0.5,bench=0"))
    for i in (0, 5, 9):
        assert all(np.array_equal(a, b) for a, b in zip(plain.sample(i), zero.sample(i)))
    for bad, message in (
        ("bench=1", "0 <= bench < 1"),
        ("bench_tasks=smog", "smog"),
        ("bench=x", "not a number"),
    ):
        with pytest.raises(ConfigError, match=message):
            ConditionMix.parse(bad)


def test_qat_synthesises_with_the_fp32_runs_mix() -> None:
    from qdr_core.train.qat import QATConfig, _data_source

    images = [np.full((64, 64, 3), 0.5, np.float32)]
    pairs = _data_source(QATConfig(task="auto", patch=32, mix="clean=1,single=0"), False, images)(3)
    assert isinstance(pairs, ConditionPairs) and pairs.mix.clean == 1.0
    degraded, clean = pairs.sample(0)
    assert np.array_equal(degraded, clean)
    assert _data_source(QATConfig(task="auto", patch=32), False, images)(3).mix == ConditionMix()
    with pytest.raises(ConfigError, match="--mix"):
        _data_source(QATConfig(task="noise", patch=32, mix="clean=0.5"), False, images)(3)
