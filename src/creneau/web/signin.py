"""Signing in with a password and a one-time code (django-otp), as agents at the console and
the hospital's staff do: the attempts are rate-limited per address and account."""

from django.contrib.auth import login as auth_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from creneau.booking.throttling import throttle
from creneau.errors import DomainError


def sign_in(
    request: HttpRequest,
    *,
    form_class,
    limit: str,
    template: str,
    home: str,
    context: dict | None = None,
) -> HttpResponse:
    """The sign-in page of ``form_class`` (an AuthenticationForm with the one-time code),
    counting attempts against the rate limit ``limit``; ``home`` once signed in. ``context``:
    what else the page shows (another way to sign in)."""
    form = form_class(request, data=request.POST or None)
    context = {**(context or {}), "form": form}
    if request.method == "POST":
        try:
            throttle(request, limit, request.POST.get("username", "")[:150])
        except DomainError as error:
            form.add_error(None, error.message)
            return render(request, template, context, status=429)
        if form.is_valid():
            auth_login(
                request,
                form.get_user(),
                backend="django.contrib.auth.backends.ModelBackend",
            )  # with its device, through django-otp
            return HttpResponseRedirect(home)
    return render(request, template, context)
