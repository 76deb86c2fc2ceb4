"""Model families behind one interface, so training and tuning share every fit.

A family is one module that exposes ``FAMILY``: a :class:`Family` whose
``fit`` and ``predict_proba`` are the only code that builds and scores its
model, and whose hyper-parameters are the fields of one frozen dataclass.
A built-in family is registered by one :class:`FamilyInfo` line in
:data:`BUILT_IN`; ``tools/generate.py`` writes its ``train_<family>`` entry
point from that. A family from another installed package registers itself
through the entry-point group ``psystock.families`` (its name -> the
``module:FAMILY`` object) and is trained by the generic ``train`` entry point.
Estimators that speak scikit-learn's API need no more than
:func:`psystock.models.sklearn.sklearn_family`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from psystock import PsystockError

P = TypeVar("P")

PLUGIN_GROUP = "psystock.families"
GENERIC_ENTRY_POINT = "train"


@dataclass(frozen=True)
class FamilyInfo:
    """What the pipeline needs to know of a family without importing its framework."""

    name: str
    run_name: str  # its training runs' name (the reference's, for the book's three)
    module: str  # the module that defines FAMILY
    cost: int = 1  # relative training time: the costliest start first when steps queue
    plugin: str = ""  # the distribution that installed it, for a plugin family
    # modules its steps' own forkserver imports before they fork, instead of forking.STEP_PRELOAD
    preload: tuple[str, ...] = ()

    @property
    def entry_point(self) -> str:
        """The entry point that trains it: ``train_<family>`` for a built-in, ``train`` for a plugin."""
        return GENERIC_ENTRY_POINT if self.plugin else f"train_{self.name}"

    @property
    def label(self) -> str:
        """What ``main`` calls its training step (and what ``rerun`` names)."""
        return f"train_{self.name}"


# TensorFlow, loaded in the Keras steps' own forkserver (psystock.forking).
KERAS_PRELOAD = "psystock.models.keras_preload"
# One line per built-in family.
BUILT_IN = {
    info.name: info
    for info in (
        FamilyInfo("logreg", "logistic_regression_model_baseline", "psystock.models.logreg"),
        FamilyInfo("xgboost", "xgboost_model_baseline", "psystock.models.xgb"),
        FamilyInfo("keras", "keras_model_baseline", "psystock.models.keras_net", cost=3, preload=(KERAS_PRELOAD,)),
        FamilyInfo("lightgbm", "lightgbm_model", "psystock.models.lgbm"),
        FamilyInfo("forest", "random_forest_model", "psystock.models.forest"),
    )
}
FAMILY_NAMES = tuple(BUILT_IN)
# The reference's three: main's default choice of families.
BOOK_FAMILIES = ("logreg", "xgboost", "keras")


def _identity(X: pd.DataFrame) -> Any:
    return X


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Family(Generic[P]):
    """One model family: its :class:`FamilyInfo`, its hyper-parameters and its implementation.

    ``fit(X, y, params, seed, verbose, log_dir)`` returns a fitted model
    (a family may write training logs such as TensorBoard's into ``log_dir``);
    ``predict_proba(model, X)`` returns the probability of "up" per row;
    ``check_params(params)`` refuses invalid hyper-parameters with a PsystockError;
    ``search_space()`` returns a hyperopt space over fields of ``params_type``;
    ``as_model_input(X)`` turns a feature frame into what the logged model takes;
    ``autolog_flavor`` and ``model_flavor`` name the ``mlflow.<flavor>`` modules
    that autolog the framework and log its models; ``prepare()`` runs before
    the framework is first imported through MLflow.
    """

    info: FamilyInfo
    params_type: type[P]
    fit: Callable[..., Any]
    predict_proba: Callable[[Any, Any], np.ndarray]
    check_params: Callable[[P], None]
    search_space: Callable[[], dict[str, Any]]
    autolog_flavor: str
    model_flavor: str
    pip_requirements: tuple[str, ...]
    as_model_input: Callable[[pd.DataFrame], Any] = _identity
    prepare: Callable[[], None] = _nothing
    # A family whose fits cost a fixed set-up (Keras compiles and traces a network) may give a
    # trainer that pays it once for many fits, each equal to ``fit``'s:
    # trainer(params, seed)(X, y, verbose, log_dir) -> model, the model valid until its next fit.
    trainer: Callable[[P, int], Callable[..., Any]] | None = None
    log_model_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def run_name(self) -> str:
        return self.info.run_name

    @property
    def entry_point(self) -> str:
        return self.info.entry_point

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.params_type))  # type: ignore[arg-type]

    def defaults(self) -> P:
        """The family's hyper-parameters as ``train_<family>`` defaults them."""
        return self.params_type()

    def params(self, values: Mapping[str, Any] | object) -> P:
        """Hyper-parameters from a mapping (a search-space sample over the defaults) or from
        any object with those attributes (a step's arguments), each cast to its declared type."""
        types = {f.name: f.type for f in dataclasses.fields(self.params_type)}  # type: ignore[arg-type]
        defaults = self.defaults()
        if isinstance(values, Mapping):
            unknown = sorted(set(values) - set(types))
            if unknown:
                raise PsystockError(f"{self.name} has no parameters {', '.join(unknown)}")

            def get(name: str) -> Any:
                return values.get(name, getattr(defaults, name))
        else:

            def get(name: str) -> Any:
                return getattr(values, name)

        return self.params_type(**{name: _cast(name, get(name), kind) for name, kind in types.items()})

    def autolog(self) -> None:
        """Switch on the framework's MLflow autologging; models are logged by :meth:`log_model`."""
        import mlflow

        self.prepare()
        getattr(mlflow, self.autolog_flavor).autolog(log_models=False, log_datasets=False, silent=True)

    def log_model(self, model: Any, name: str, signature: Any, input_example: Any) -> Any:
        """Log ``model`` to the active run, with explicit pip requirements (inferring them costs seconds)."""
        import mlflow

        return getattr(mlflow, self.model_flavor).log_model(
            model,
            name=name,
            signature=signature,
            input_example=input_example,
            pip_requirements=list(self.pip_requirements),
            **dict(self.log_model_kwargs),
        )

    def save_model(self, model: Any, path: str) -> None:
        """Save ``model`` to the folder ``path`` as :meth:`log_model` logs it: with explicit pip
        requirements, where inferring them starts a process that loads the model again."""
        import mlflow

        self.prepare()
        getattr(mlflow, self.model_flavor).save_model(
            model, path, pip_requirements=list(self.pip_requirements), **dict(self.log_model_kwargs)
        )


def needs_scaling(X: Any) -> bool:
    """Whether features are anything but 0/1 flags: a model that is not scale-free then standardises
    them itself, inside the logged model, so that it is served the raw columns."""
    values = np.asarray(X, dtype=float)
    return not bool(np.isin(values, (0.0, 1.0)).all())


def _cast(name: str, value: Any, kind: Any) -> Any:
    """A hyper-parameter value as its field's type (``"int"``, ``"float"``, ``"str"``, as annotated)."""
    kind = kind if isinstance(kind, str) else kind.__name__
    if isinstance(value, np.generic):
        value = value.item()
    if kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)  # a search space's uniform draws of whole numbers
    try:
        return {"int": int, "float": float, "str": str}[kind](value)
    except ValueError:
        raise PsystockError(f"hyper-parameter {name} must be {kind}, got {value!r}") from None


def _plugin_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)}


def _plugin_info(ep: importlib.metadata.EntryPoint) -> FamilyInfo:
    package = ep.dist.name if ep.dist is not None else ep.module
    return FamilyInfo(ep.name, run_name_of(ep.name), ep.module, plugin=package)


def run_name_of(name: str) -> str:
    """The name of a plugin family's training runs."""
    return f"{name}_model"


def plugin_families() -> dict[str, FamilyInfo]:
    """The families other installed packages declare (group ``psystock.families``), by name,
    without importing them. A plugin may not take a built-in family's name."""
    found = {}
    for name, ep in _plugin_entry_points().items():
        info = _plugin_info(ep)
        if name in BUILT_IN:
            raise PsystockError(
                f"package {info.plugin} declares a model family {name!r}, which is a built-in family's "
                f"name: rename its {PLUGIN_GROUP} entry point"
            )
        found[name] = info
    return found


def all_families() -> dict[str, FamilyInfo]:
    """Every family that can be trained here: the built-in ones, then the plugins'."""
    return BUILT_IN | plugin_families()


def family_info(name: str) -> FamilyInfo:
    """The family called ``name`` (no framework import); unknown names are a clear error."""
    families = all_families()
    if name not in families:
        raise PsystockError(
            f"unknown model family {name!r}; choose one of {', '.join(families)} "
            f"(a family from another package is installed with pip and found through {PLUGIN_GROUP})"
        )
    return families[name]


def get_family(name: str) -> Family[Any]:
    """The family called ``name`` with its implementation (imports its framework). A plugin that
    cannot be imported, or whose object is not a family of that name, is one clear error."""
    info = family_info(name)
    if not info.plugin:
        family: Family[Any] = importlib.import_module(info.module).FAMILY
        return family
    ep = _plugin_entry_points()[name]
    where = f"package {info.plugin} ({PLUGIN_GROUP} entry point {name} = {ep.value})"
    try:
        loaded = ep.load()
    except Exception as exc:  # a plugin's import may fail in any way: name it, not a traceback
        raise PsystockError(
            f"model family {name!r} from {where} cannot be loaded: {type(exc).__name__}: {exc}; "
            f"reinstall the package, or pip uninstall {info.plugin}"
        ) from None
    if not isinstance(loaded, Family) or loaded.name != name:
        what = f"family {loaded.name!r}" if isinstance(loaded, Family) else type(loaded).__name__
        raise PsystockError(
            f"model family {name!r} from {where} is a {what}, not a psystock Family named {name!r}: "
            "point the entry point at the module's FAMILY"
        )
    # Where it came from is the entry point's to say: its package, its module, its `train` step.
    return dataclasses.replace(loaded, info=info)


def choose_families(text: str) -> tuple[str, ...]:
    """The families named in ``text`` (comma-separated; ``all`` is every family here), each once,
    in the order given; an unknown one is a clear error naming those there are."""
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    families = all_families()
    if chosen == ["all"]:
        return tuple(families)
    if not chosen:
        raise PsystockError(f"families is empty: name one or more of {', '.join(families)}")
    unknown = [n for n in chosen if n not in families]
    if unknown:
        raise PsystockError(
            f"unknown model families {', '.join(unknown)}; choose among {', '.join(families)} "
            f"(or pip install the package that provides one through {PLUGIN_GROUP})"
        )
    repeated = sorted({n for n in chosen if chosen.count(n) > 1})
    if repeated:
        raise PsystockError(f"families names {', '.join(repeated)} more than once")
    return tuple(chosen)


def source_files(info: FamilyInfo) -> list[Path]:
    """The files of the module that defines a family, found without importing it: the step cache
    hashes them, so an edit of a family (a plugin's too) re-runs the steps that use it. A package
    counts with every ``.py`` file in it."""
    spec = importlib.util.find_spec(info.module)
    if spec is None or spec.origin is None:
        raise PsystockError(f"model family {info.name!r}: module {info.module} is not installed")
    origin = Path(spec.origin)
    if origin.name == "__init__.py":
        return sorted(origin.parent.rglob("*.py"))
    return [origin]


def parse_hyperparameters(family: Family[Any], text: str) -> Any:
    """``"n_estimators=200,max_depth=4"`` as the family's hyper-parameters over its defaults;
    an unknown name, a repeated one or a value of the wrong type is one clear error."""
    values: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise PsystockError(f"hyperparameters: {item!r} is not name=value (e.g. max_depth=4,n_estimators=200)")
        if name in values:
            raise PsystockError(f"hyperparameters: {name} is given twice")
        values[name] = value.strip()
    unknown = sorted(set(values) - set(family.param_names))
    if unknown:
        raise PsystockError(
            f"{family.name} has no hyper-parameters {', '.join(unknown)}; its hyper-parameters are "
            f"{', '.join(family.param_names)}"
        )
    params = family.params(values)
    family.check_params(params)
    return params


def format_hyperparameters(family: Family[Any], params: Any) -> str:
    """Hyper-parameters as the ``name=value,...`` text that :func:`parse_hyperparameters` reads."""
    return ",".join(f"{name}={getattr(params, name)!r}".replace("'", "") for name in family.param_names)


def requirements(*packages: str) -> tuple[str, ...]:
    """Pinned pip requirements for a logged model, from the installed versions.

    Passing them explicitly spares MLflow the seconds it spends inferring them.
    """
    from importlib.metadata import version

    return tuple(f"{p}=={version(p)}" for p in ("mlflow", "pandas", "numpy", "scikit-learn", *packages))
