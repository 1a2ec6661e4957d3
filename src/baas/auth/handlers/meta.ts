/** GET /health, GET /settings, GET /.well-known/jwks.json (internal/api/api.go, settings.go, jwks.go). */
import type { AuthAnswer, AuthCall } from '../call.js';
import { packageInfo } from '../../../version.js';

export function health(): AuthAnswer {
  return { status: 200, body: { version: `performer-${packageInfo.version}`, name: 'GoTrue', description: 'GoTrue is a user registration and authentication API' } };
}

const EXTERNAL = ['apple', 'azure', 'bitbucket', 'discord', 'facebook', 'snapchat', 'figma', 'fly', 'github', 'gitlab', 'google', 'keycloak', 'kakao', 'linkedin', 'linkedin_oidc', 'notion', 'spotify', 'slack', 'slack_oidc', 'workos', 'twitch', 'twitter', 'zoom'];

export function settings(call: AuthCall): AuthAnswer {
  const external: Record<string, boolean> = { anonymous_users: call.config.anonymousSignIns };
  for (const name of EXTERNAL) external[name] = false;
  external.email = true;
  external.phone = false;
  return {
    status: 200,
    body: {
      external, disable_signup: false, mailer_autoconfirm: call.config.autoconfirm, phone_autoconfirm: false, sms_provider: '',
      saml_enabled: false, saml_private_key_next_configured: false, passkeys_enabled: false,
    },
  };
}

export function jwks(call: AuthCall): AuthAnswer {
  return { status: 200, body: { keys: call.keys.publicJwks }, headers: [['cache-control', 'public, max-age=600']] };
}
