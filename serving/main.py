"""ASGI entry point for process managers: `uvicorn serving.main:app --workers N`."""

from serving.api import create_app

app = create_app()
