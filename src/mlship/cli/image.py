"""``mlship image``: a bundle's container image, built here with no registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlship.cli.console import out

app = typer.Typer(
    help="Container images of bundles, built with buildah from a Debian base made here "
    "(mmdebstrap), so no registry is needed.",
    no_args_is_help=True,
)

CacheOption = Annotated[
    Path | None,
    typer.Option(
        help="Where the base's root filesystem is cached (~/.cache/mlship/images by default).",
        show_default=False,
    ),
]


@app.command("base")
def base(cache: CacheOption = None) -> None:
    """Make the Debian base image (Python, its venv module) and import it into buildah."""
    from mlship.package.image import default_cache, make_base

    with out.status("making the base image") as status:
        made = make_base(cache or default_cache(), step=status.update)
    size = made.tarball.stat().st_size / 1e6
    how = "made" if made.made else "from the cache"
    out.print(f"Base {made.tag} (Python {made.python}, {size:.0f} MB root filesystem, {how}).")


@app.command("build")
def build(
    bundle: Annotated[Path, typer.Argument(help="A bundle written by mlship package --wheels.")],
    tag: Annotated[
        str | None,
        typer.Option(help="The image's name; the bundle's mlship-MODEL:VERSION if unset."),
    ] = None,
    cache: CacheOption = None,
) -> None:
    """Build BUNDLE's image with buildah (--isolation chroot) from the local Debian base."""
    from mlship.package.image import build_image, buildable, default_cache, make_base

    opened = buildable(bundle)
    name = tag or f"localhost/mlship-{opened.name}:{opened.version}"
    with out.status("building the image") as status:
        made = make_base(cache or default_cache(), step=status.update)
        built = build_image(bundle, name, made, step=status.update)
    out.print(
        f"Built {built.tag} from {built.base} in {built.seconds:.0f} s: "
        f"{built.size / 1e6:.0f} MB, runs as user {built.user or 'root'}."
    )
    out.print(
        f"Run it: buildah from --name {opened.name} {built.tag} && buildah run "
        f"--isolation chroot -e MLSHIP_SIGNING_KEY=$MLSHIP_SIGNING_KEY {opened.name} -- "
        "mlship serve /srv/bundle --host 0.0.0.0"
    )
