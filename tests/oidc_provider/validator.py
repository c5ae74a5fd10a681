import json
import os

from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    # Every claim goes with the openid scope: the hub asks openid, email and profile.
    oidc_claim_scope = None

    def get_additional_claims(self, request):
        user = request.user
        claims = json.loads(os.environ.get("OIDC_PROVIDER_CLAIMS", "{}"))
        return {
            "preferred_username": user.username,
            "email": user.email,
            "given_name": user.first_name,
            "family_name": user.last_name,
            **claims.get(user.username, {}),
        }
