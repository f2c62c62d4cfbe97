"""The local web app (`pixelsift serve`): REST API and page. Needs the extra `pixelsift[web]`."""

from pixelsift.web.app import create_app
from pixelsift.web.config import WebConfig

__all__ = ["WebConfig", "create_app"]
