"""A real OpenID Connect provider for the sign-on tests: django-oauth-toolkit's own, in a
process of its own on loopback, with its users, its login page and its signing key."""
