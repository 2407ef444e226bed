"""`pension-cert models list|fetch`: status of the pinned model files, and getting them."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse

from models.errors import ModelError
from models.store import ENV_MODELS_DIR, ModelsDirError, ModelState, ModelStatus, ModelStore
from service.adapters.cli.common import EXIT_CONFIG, EXIT_MODEL, CliError, emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="list or fetch the pinned model files")
    msub = p.add_subparsers(dest="models_command", required=True)
    lp = msub.add_parser("list", help="status of every model in the manifest (JSON line each)")
    lp.add_argument("--pack", help="only the models of this pack")
    lp.set_defaults(func=_list)
    fp = msub.add_parser("fetch", help="copy or download the pinned files and verify their sha256")
    fp.add_argument("names", nargs="*", help="model names (default: every model of the pack)")
    fp.add_argument("--pack", default="default")
    fp.add_argument("--all", action="store_true", help="every model in the manifest")
    fp.add_argument("--from", dest="source", help="directory or base URL holding the files (default: upstream)")
    fp.set_defaults(func=_fetch)


def _pack_models(store: ModelStore, pack: str) -> list[str]:
    spec = store.manifest.pack(pack)
    return list(dict.fromkeys(n for names in spec.roles.values() for n in names))


def _pack_states(store: ModelStore, pack: str) -> list[tuple[str, ModelState]]:
    """(role, state) of each model this pack would use here, as `serve` and the pipelines choose it
    (models/packs.py resolve)."""
    from models.packs import ModelPack  # lazy: the model runtime only for the commands that check a pack

    spec = store.manifest.pack(pack)
    model_pack = ModelPack(spec, store)
    return [(role, store.state(name)) for role in spec.roles for name in model_pack.resolve(role)]


def pack_problems(store: ModelStore, pack: str) -> list[str]:
    """Why this pack cannot run here, one item per role (empty: it can): the model it would use for each role
    is missing, fails its sha256 or cannot be read."""
    return _problems(_pack_states(store, pack))


def _problems(states: list[tuple[str, ModelState]]) -> list[str]:
    return [
        f"{role}: {st.spec.name} is {st.status.in_words} ({st.path})"
        for role, st in states
        if st.status is not ModelStatus.OK
    ]


def unavailable(store: ModelStore, pack: str) -> CliError | None:
    """The MODEL_UNAVAILABLE error of a pack that cannot run here (None: it can), with the advice that helps:
    fetch the missing or damaged files; for an unreadable one (a folder on its path is a file, or reading it is
    refused) the path or the permissions, which no fetch changes."""
    states = _pack_states(store, pack)
    statuses = {st.status for _, st in states} - {ModelStatus.OK}
    if not statuses:
        return None
    advice = []
    if statuses - {ModelStatus.UNREADABLE}:
        advice.append(f"run `pension-cert models fetch --pack {pack}`")
    if ModelStatus.UNREADABLE in statuses:
        advice.append(f"fix the path or the permissions ({ENV_MODELS_DIR}={store.models_dir})")
    message = f"pack {pack} cannot run: {'; '.join(_problems(states))}; {'; '.join(advice)}"
    return CliError(message, EXIT_MODEL, code="MODEL_UNAVAILABLE")


def check_models(pack_name: str | None) -> None:
    """Refuse to start without the pack's model files (`serve`, `worker` and the Celery worker): the rule is
    pack_problems (the model each role would use, missing or failing its sha256), so no two commands disagree
    about whether a pack can run."""
    from models.ocr_pins import ocr_problems  # lazy: as load_pack
    from models.packs import load_pack

    pack = load_pack(pack_name)  # the configured pack, or PENSION_CERT_MODEL_PACK (raises on an unknown one)
    error = unavailable(pack.store, pack.spec.name)
    if error is not None:
        raise error
    # The ID-card OCR models, inside their package: pinned by sha256 as the pack's (docs/security.md).
    ocr = ocr_problems()
    if ocr:
        raise CliError(f"the ID-card OCR cannot run: {'; '.join(ocr)}", EXIT_MODEL, code="MODEL_UNAVAILABLE")


def _list(args: argparse.Namespace) -> int:
    from models.packs import pack_name_from_env

    store = ModelStore()
    names = _pack_models(store, args.pack) if args.pack else list(store.manifest.models)
    for name in names:
        st = store.state(name)
        emit(
            {
                "name": name,
                "task": st.spec.task,
                "file": st.spec.file,
                "status": st.status.value,
                "path": str(st.path),
                "sha256": st.spec.sha256,
                "licence": st.spec.licence,
                "commercial_use": st.spec.commercial_use,
                "packs": [p.name for p in store.manifest.packs.values() if any(name in r for r in p.roles.values())],
            }
        )
    # The listing is information; the exit code says whether the pack it is about (--pack, else the configured
    # one) can run, so that a script can stop before `serve` or `certify` would.
    pack = args.pack or pack_name_from_env()
    error = unavailable(store, pack)
    if error is not None:
        raise error
    return 0


def _fetch(args: argparse.Namespace) -> int:
    store = ModelStore()
    names = args.names or (list(store.manifest.models) if args.all else _pack_models(store, args.pack))
    for name in names:  # every name known before anything is fetched: a typo is a usage error (exit 2)
        store.manifest.model(name)
    errors: list[str] = []
    for name in names:
        try:
            path = store.fetch(name, args.source)
            emit({"name": name, "status": "ok", "path": str(path)})
        except ModelsDirError as exc:  # the folder, not this model: the same for every one, told once
            raise CliError(str(exc), EXIT_CONFIG, code="CONFIG_INVALID") from None
        except (ModelError, OSError, ValueError) as exc:
            errors.append(_fetch_problem(name, exc))
            emit({"name": name, "status": "error", "error": errors[-1]})
    if errors:
        # The one line a script shows (scripts/start.sh keeps stdout for itself): the count and the first cause,
        # whose message (models/errors.py) says how to get the files another way.
        raise CliError(
            f"{len(errors)} of {len(names)} model(s) could not be fetched (each one's error is on stdout); the "
            f"first: {errors[0]}",
            EXIT_MODEL,
            code="MODEL_UNAVAILABLE",
        )
    return 0


def _fetch_problem(name: str, exc: Exception) -> str:
    """One model's fetch failure in words: the store's own message, or an OS error without its errno and repr
    (the models directory cannot be written: not a download problem)."""
    if isinstance(exc, OSError) and not isinstance(exc, ModelError) and exc.strerror:
        return f"model {name!r}: {exc.filename or 'the models directory'}: {exc.strerror}"
    return str(exc)
