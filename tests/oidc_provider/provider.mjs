// The hospital's OpenID provider for the sign-on tests: panva's oidc-provider (OpenID
// Certified), unchanged, with its development login page (any login, the password ignored).
//
//   node provider.mjs PORT REDIRECT_URI CLIENT_ID CLIENT_SECRET ISSUER [FAULT]
//
// OIDC_PROVIDER_JWKS: its signing key (a private JWK set); OIDC_PROVIDER_CLAIMS: login -> claims;
// OIDC_PROVIDER_ID_TOKEN_TTL: its ID tokens' lifetime in seconds (the provider's default: 1 h).
// FAULT makes the provider itself answer wrongly, as a misconfigured or hostile one would:
//   aud          the ID token it issues is the one it would issue to another of its clients;
//   userinfo-sub its userinfo endpoint answers about the account "org.admin", whoever signed in.
// An issuer other than its own address (ISSUER) and a skewed clock (run under faketime) are
// the other faults; no code of the tests signs anything.
import Provider from 'oidc-provider';

const [port, redirectUri, clientId, clientSecret, issuer, fault = ''] = process.argv.slice(2);
const accounts = JSON.parse(process.env.OIDC_PROVIDER_CLAIMS || '{}');
const jwks = JSON.parse(process.env.OIDC_PROVIDER_JWKS);

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: 'another-application',
      client_secret: 'the-other-application-s-secret',
      redirect_uris: ['https://another.example/callback'],
    },
  ],
  jwks,
  claims: {
    openid: ['sub'],
    email: ['email'],
    profile: ['given_name', 'family_name', 'preferred_username', 'creneau_roles'],
  },
  pkce: { required: () => true },
  ...(process.env.OIDC_PROVIDER_ID_TOKEN_TTL
    ? { ttl: { IdToken: Number(process.env.OIDC_PROVIDER_ID_TOKEN_TTL) } }
    : {}),
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const subject = fault === 'userinfo-sub' && ctx.oidc.route === 'userinfo' ? 'org.admin' : id;
    return {
      accountId: subject,
      async claims() {
        return { sub: subject, preferred_username: subject, ...(accounts[subject] || {}) };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
if (fault === 'aud') {
  const issue = provider.IdToken.prototype.issue;
  provider.IdToken.prototype.issue = async function issueForAnother(options) {
    if (options && options.use === 'idtoken') {
      this.client = await provider.Client.find('another-application');
    }
    return issue.call(this, options);
  };
}
provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
