"""The configuration of a run: everything that changes what it computes, read from its provenance.

Runs stored under one label (the ``arch=`` directory) are replicates only if they were trained the
same way. A run's configuration is a flat mapping of settings: the training hyper-parameters
(:class:`~gwas_models.training.train.TrainConfig` less execution settings such as
``eval_batch_size``), the architecture built and its options, the score definitions recorded, and
the dataset (name, kind, content identity, image size, size). Where and how a run was executed
(device, threads, workers, host, executor, job, batched training) is not part of it.

It is computed from the provenance fields every run records (``config``, ``arch``,
``arch_options``, ``scores``/``score_definitions``, ``early_epoch``, ``vog_epochs``, ``dataset``,
``dataset_source``, ``n_examples``), so that runs written before configurations were recorded are
compared the same way as new ones. A setting a run does not record (a hand-written run without
``config``) is unknown and never compared.

Score parameters: ``early_epoch`` belongs to the configuration only when ``el2n`` or ``grand`` was
recorded, ``vog_epochs`` only when a VoG was, each as the value the run used (a ``None`` in the
training config resolved the way :class:`~gwas_models.training.recorder.ScoreRecorder` resolves it).
Score names are today's: a version-1 run's ``loss`` is ``loss:presentations``, as the store reads it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping

from gwas_models.matrix import format_seeds
from gwas_models.scores import SCORES, default_early_epoch, default_vog_epochs, legacy_column_name

#: Training settings that change how fast a run is computed, not what it computes.
EXECUTION_SETTINGS: tuple[str, ...] = ("eval_batch_size",)
#: Training settings added after runs were first recorded, with the behaviour runs had before them.
ADDED_SETTINGS: dict[str, Any] = {"optimizer": "sgd"}
#: The provenance entry that parameterises a score (by its base name); runs pooled for that score
#: must agree on it (an el2n at epoch 1 is not an el2n at epoch 2).
SCORE_PARAMETERS: dict[str, str] = {"el2n": "early_epoch", "grand": "early_epoch", "vog": "vog_epochs"}
#: Length of :func:`configuration_id` (hex digits of its sha256).
ID_LENGTH = 12


def run_configuration(provenance: Mapping[str, Any], definitions_version: int | None = None) -> dict[str, Any]:
    """The configuration of a run, from its provenance (or the provenance a collection will write).

    Parameters
    ----------
    provenance : mapping
        A run's provenance, or the same fields of a planned run.
    definitions_version : int, optional
        The run's score-definitions version when its provenance has no ``score_definitions``
        (see :func:`gwas_models.formats.store.definitions_version`); None reads its ``scores`` as
        today's names.

    Returns
    -------
    dict
        Flat, JSON-serialisable settings; only those the provenance records.
    """
    configuration: dict[str, Any] = {}
    if provenance.get("arch") is not None:
        configuration["arch"] = provenance["arch"]
        # Architecture options came with timm models; runs before them had none.
        configuration["arch_options"] = dict(provenance.get("arch_options") or {})
    recorded = _recorded_scores(provenance, definitions_version)
    config = provenance.get("config")
    if isinstance(config, Mapping):
        settings = {**ADDED_SETTINGS, **config}
        for name in (*EXECUTION_SETTINGS, "early_epoch", "vog_checkpoints"):
            settings.pop(name, None)
        configuration.update(settings)
        configuration.update(_score_parameters(provenance, config, recorded))
    if recorded is not None:
        configuration["scores"] = recorded
    configuration.update(_dataset_settings(provenance))
    return _jsonable(configuration)


def _recorded_scores(provenance: Mapping[str, Any], definitions_version: int | None) -> list[str] | None:
    """The score definitions a run recorded, by today's names, sorted; None when not recorded."""
    record = provenance.get("score_definitions")
    if isinstance(record, Mapping) and "recorded" in record:
        return sorted(record["recorded"])
    names = provenance.get("scores")
    if names is None:
        return None
    if definitions_version == 1:
        names = [legacy_column_name(name) for name in names]
    return sorted(names)


def _score_parameters(provenance: Mapping[str, Any], config: Mapping[str, Any], recorded: list[str] | None) -> dict[str, Any]:
    """``early_epoch`` and ``vog_epochs`` as the run used them, for the scores that depend on them."""
    bases = {SCORES[name].base for name in recorded or () if name in SCORES}
    wanted = {SCORE_PARAMETERS[base] for base in bases if base in SCORE_PARAMETERS}
    epochs = config.get("epochs")
    parameters: dict[str, Any] = {}
    if "early_epoch" in wanted:
        value = provenance.get("early_epoch", config.get("early_epoch"))
        if value is None and epochs is not None:
            value = default_early_epoch(int(epochs))
        if value is not None:
            parameters["early_epoch"] = int(value)
    if "vog_epochs" in wanted:
        value = provenance.get("vog_epochs")
        if value is None and epochs is not None:
            value = default_vog_epochs(int(epochs), config.get("vog_checkpoints"))
        if value is not None:
            parameters["vog_epochs"] = [int(v) for v in value]
    return parameters


def _dataset_settings(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset's name and content, not its location (a moved file holds the same examples)."""
    settings: dict[str, Any] = {}
    if provenance.get("dataset") is not None:
        settings["dataset"] = provenance["dataset"]
    source = provenance.get("dataset_source")
    if isinstance(source, Mapping):
        if source.get("kind") is not None:
            settings["dataset_kind"] = source["kind"]
        for key in ("identity", "image_size"):
            if source.get(key) is not None:
                settings["dataset_identity" if key == "identity" else key] = source[key]
    if provenance.get("n_examples") is not None:
        settings["n_examples"] = int(provenance["n_examples"])
    return settings


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so stored and new ones compare."""
    return json.loads(json.dumps(value, sort_keys=True))


def canonical_json(configuration: Mapping[str, Any]) -> str:
    """The one JSON text of a configuration: sorted keys, no spaces."""
    return json.dumps(configuration, sort_keys=True, separators=(",", ":"))


def configuration_id(configuration: Mapping[str, Any]) -> str:
    """A short fingerprint of a configuration: the first hex digits of its canonical JSON's sha256."""
    return hashlib.sha256(canonical_json(configuration).encode()).hexdigest()[:ID_LENGTH]


def format_setting(name: str, value: Any) -> str:
    """``name=value`` as a message shows it: lists joined by commas, mappings as JSON."""
    if isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, Mapping):
        text = canonical_json(value)
    else:
        text = str(value)
    return f"{name}={text}"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def settings_against(new: Mapping[str, Any], stored: Mapping[int, Mapping[str, Any]]) -> list[tuple[str, dict[str, list[int]]]]:
    """The settings of ``new`` that stored runs recorded otherwise.

    Parameters
    ----------
    new : mapping
        The configuration of a collection.
    stored : mapping of seed to configuration
        The runs already stored under the collection's label.

    Returns
    -------
    list of (setting, {value text: seeds})
        For each differing setting, in sorted order, the stored values other than the new one and
        the seeds that hold each.
    """
    found = []
    for name in sorted(new):
        others: dict[str, list[int]] = {}
        for seed, configuration in sorted(stored.items()):
            if name in configuration and _key(configuration[name]) != _key(new[name]):
                others.setdefault(format_setting(name, configuration[name]), []).append(seed)
        if others:
            found.append((name, others))
    return found


def conflicting_settings(stored: Mapping[int, Mapping[str, Any]], ignore: Iterable[str] = ()) -> list[tuple[str, dict[str, list[int]]]]:
    """The settings on which some runs disagree: for each, every value and the seeds that hold it.

    A run that does not record a setting takes no side. ``ignore`` names settings to leave out.
    """
    skipped = set(ignore)
    names = sorted({name for configuration in stored.values() for name in configuration} - skipped)
    found = []
    for name in names:
        values: dict[str, list[int]] = {}
        texts: dict[str, str] = {}
        for seed, configuration in sorted(stored.items()):
            if name in configuration:
                key = _key(configuration[name])
                texts.setdefault(key, format_setting(name, configuration[name]))
                values.setdefault(key, []).append(seed)
        if len(values) > 1:
            found.append((name, {texts[key]: seeds for key, seeds in values.items()}))
    return found


def describe_values(values: Mapping[str, list[int]], with_seeds: bool) -> str:
    """``epochs=10 (seeds 0-4), epochs=20 (seeds 5)``, or without the seeds when all agree."""
    if not with_seeds:
        return ", ".join(values)
    return ", ".join(f"{text} (seeds {format_seeds(seeds)})" for text, seeds in values.items())
