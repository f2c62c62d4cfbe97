"""The local web app (`pixelsift serve`): REST API and page. Needs the extra `pixelsift[web]`."""

from .app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]
