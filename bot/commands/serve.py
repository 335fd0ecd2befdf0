"""`vram-check serve`: run the GitHub App webhook service (settings from the environment, see
docs/github-app.md)."""

from __future__ import annotations

import argparse
import logging

NAME = "serve"
HELP = "Run the GitHub App webhook service (POST /webhook, GET /healthz, GET /metrics)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.settings import Settings

    settings = Settings.from_env()  # SettingsError (an InputError) → one stderr line, exit 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                proxy_headers=True, access_log=False)
    return 0
