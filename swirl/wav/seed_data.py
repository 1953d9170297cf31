"""What one WAV seed trains and is scored on: the run's dataset (:func:`load_run_data`), split per seed into the seed
labels, the subgoal generator's state-only pairs, the pool's states and the test rows (:func:`split_data`), and the
labelled set a round grows (:func:`labelled_dataset`).

The ``labelled`` split supplies the seed labels (``seed_labels`` random rows); the ``state_only`` episodes are
split by episode number, even ones train the subgoal generator, odd ones give the pool's states (``pool_states``
random rows, every action of each a candidate); ``test`` is evaluated.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset, concatenate_datasets

from swirl.builders.minigrid_dataset import minigrid_features
from swirl.builders.prepare import prepare_dataset
from swirl.data import convert_state_texts, load_dataset_dict
from swirl.errors import SwirlError
from swirl.wav.candidates import distinct_states
from swirl.wav.wav_config import WAVConfig


def load_run_data(config: WAVConfig) -> Any:
    """The run's dataset with ``config.state_text``'s state texts: built (or found) once per run, at seed 0, and
    shared by every seed, which :func:`split_data` then splits its own way."""
    return convert_state_texts(load_dataset_dict(prepare_dataset(config, 0)), config.state_text)


def split_data(config: WAVConfig, data: Any, seed: int) -> dict[str, Any]:
    """Seed labels, subgoal-training pairs, pool states and evaluation rows for one seed."""
    labelled = data["labelled"].shuffle(seed=seed, keep_in_memory=True)
    state_only = data["state_only"]
    # alternate each env's state-only episodes: the subgoal generator never sees a pool transition
    episodes: dict[str, list[int]] = {}
    for env_id, episode in zip(state_only["env_id"], state_only["episode"]):
        episodes.setdefault(env_id, []).append(episode)
    for_subgoal = {(env_id, e) for env_id, found in episodes.items() for e in sorted(set(found))[::2]}
    if not for_subgoal or len(for_subgoal) == sum(len(set(found)) for found in episodes.values()):
        raise SwirlError("WAV needs at least two state-only episodes (one trains the subgoal generator, one gives "
                         "the pool): build the dataset with more env_episodes")
    in_subgoal = [(env_id, e) in for_subgoal for env_id, e in zip(state_only["env_id"], state_only["episode"])]
    subgoal_rows = state_only.select([i for i, flag in enumerate(in_subgoal) if flag])
    pool_rows = state_only.select([i for i, flag in enumerate(in_subgoal) if not flag])
    pool_rows = pool_rows.shuffle(seed=seed, keep_in_memory=True)
    distinct = distinct_states(pool_rows, config.pool_states)
    test = data["test"].shuffle(seed=0, keep_in_memory=True)  # the same test rows for every seed and method
    return {
        "seed_labels": labelled.select(range(min(config.seed_labels, labelled.num_rows))),
        "subgoal": subgoal_rows,
        "pool": pool_rows.select(distinct),
        "test": test.select(range(min(config.eval_rows, test.num_rows))),
    }


def labelled_dataset(seed_rows: Any, acquired: list[dict[str, Any]]) -> Any:
    """Seed labels + acquired labels as one Dataset with the transition features."""
    features = minigrid_features()
    base = seed_rows.select_columns(list(features)).cast(features)
    if not acquired:
        return base
    extra = Dataset.from_list([{name: row[name] for name in features} for row in acquired], features=features)
    return concatenate_datasets([base, extra])
