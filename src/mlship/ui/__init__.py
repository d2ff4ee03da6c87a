"""The web UI: pages a team reads runs in, served by ``mlship ui`` on the local workspace and
under ``/ui`` by ``mlship server`` (see :mod:`mlship.ui.app`)."""

from mlship.ui.app import create_ui, local_app

__all__ = ["create_ui", "local_app"]
