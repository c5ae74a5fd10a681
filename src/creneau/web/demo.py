"""The demo's widget: a channel for one department of one hospital, and an example "hospital web
page" served on a second loopback port that embeds it, as a hospital's web team would."""

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.db import transaction
from django.utils import translation

from creneau.channels.models import Channel, Perimeter
from creneau.channels.services import channel_appearance_set, channel_create, perimeter_create
from creneau.directory.models import Department, Organisation

DEMO_FINESS = "750900011"  # Hôpital de la Pitié-Salpêtrière
DEMO_DEPARTMENT = "neurosurgery"
WIDGET_NAME = "Widget — Pitié-Salpêtrière, neurochirurgie"


def example_origins(port: int) -> str:
    # localhost and 127.0.0.1 are different sites: the page on localhost frames the hub on
    # 127.0.0.1 across sites, as a hospital's site frames its hub.
    return f"http://localhost:{port}\nhttp://127.0.0.1:{port}"


@transaction.atomic
def demo_widget_ensure(*, organisation: Organisation, example_port: int) -> Channel:
    channel = Channel.objects.filter(organisation=organisation, name=WIDGET_NAME).first()
    if channel is None:
        department = Department.objects.select_related("establishment").get(
            establishment__finess=DEMO_FINESS, code=DEMO_DEPARTMENT
        )
        with translation.override(settings.LANGUAGE_CODE):
            perimeter = Perimeter.objects.filter(
                organisation=organisation, name=WIDGET_NAME
            ).first() or perimeter_create(
                organisation=organisation,
                name=WIDGET_NAME,
                establishments=[department.establishment],
                departments=[department],
                via="demo",
                note="Neurochirurgie de la Pitié-Salpêtrière seulement.",
            )
        channel = channel_create(
            organisation=organisation,
            name=WIDGET_NAME,
            kind=Channel.Kind.EMBED,
            perimeter=perimeter,
            via="demo",
        )
    return channel_appearance_set(
        channel=channel,
        allowed_origins=example_origins(example_port),
        brand_colour=channel.brand_colour or "#6b2d5c",
        font=channel.font,
    )


EXAMPLE_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Neurochirurgie — Hôpital de la Pitié-Salpêtrière (page d'exemple)</title>
<style>
body {{ font-family: Georgia, serif; margin: 0; background: #f7f3ee; color: #222; }}
header {{ background: #6b2d5c; color: #fff; padding: 1rem 2rem; }}
main {{ max-width: 60rem; margin: 0 auto; padding: 1rem 2rem; }}
.widget {{ background: #fff; border: 1px solid #d8cfc4; border-radius: .5rem; }}
</style>
</head>
<body>
<header><p><strong>Hôpital de la Pitié-Salpêtrière</strong> — page d'exemple du site de
l'hôpital</p></header>
<main>
<h1>Service de neurochirurgie</h1>
<p>Cette page imite le site web d'un hôpital. Le module de prise de rendez-vous ci-dessous est
servi par le hub Créneau de l'hôpital ({hub}) et ne propose que les créneaux de ce service.</p>
<h2>Prendre rendez-vous en ligne</h2>
<div class="widget">
<script src="{hub}/embed.js" data-channel="{key}" async></script>
<noscript><iframe src="{hub}/embed/{key}/" title="Prendre rendez-vous"
style="width:100%;height:800px;border:0"></iframe></noscript>
</div>
</main>
</body>
</html>
"""


def example_page(*, hub: str, key: str) -> bytes:
    return EXAMPLE_PAGE.format(hub=html.escape(hub), key=html.escape(key)).encode()


def serve_example_page(*, port: int, hub: str, key: str, calendar=None) -> ThreadingHTTPServer:
    """Serve the example hospital page on 127.0.0.1:``port`` from a background thread, and at
    ``/agenda.ics`` a demo practitioner's own calendar (``calendar()`` makes its bytes), as the
    hospital's calendar server would."""
    body = example_page(hub=hub, key=key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/agenda.ics" and calendar is not None:
                self._send(calendar(), "text/calendar; charset=utf-8")
                return
            if path not in {"/", "/index.html"}:
                self.send_error(404)
                return
            self._send(body, "text/html; charset=utf-8")

        def _send(self, content: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="example-page", daemon=True).start()
    return server
