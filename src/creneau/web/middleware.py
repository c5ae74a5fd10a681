"""Which language a request is answered in."""

from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.cache import patch_vary_headers

# The API and the admin negotiate (Accept-Language, then the language cookie); patient pages
# carry their language in the address (/ in French, /en/ in English), which also works inside a
# widget that may keep no cookie.
NEGOTIATED = ("/api/", "/admin/")


class CreneauLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request):
        if not request.path_info.startswith(NEGOTIATED):
            return super().process_request(request)
        language = translation.get_language_from_request(request, check_path=False)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        return None

    def process_response(self, request, response):
        if request.path_info.startswith(NEGOTIATED):
            patch_vary_headers(response, ("Accept-Language",))
            response.headers.setdefault("Content-Language", translation.get_language())
            return response
        return super().process_response(request, response)
