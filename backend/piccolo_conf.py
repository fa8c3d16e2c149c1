"""Piccolo configuration (PICCOLO_CONF=backend.piccolo_conf): the engine comes from settings."""

from piccolo.conf.apps import AppRegistry

from backend.database import engine_from_url
from backend.settings import get_settings

DB = engine_from_url(get_settings().database_url)

APP_REGISTRY = AppRegistry(apps=["backend.piccolo_app"])
