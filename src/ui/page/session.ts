/** The page's API client, with the token this tab was opened with. */
import { ApiClient } from './client.js';

const TOKEN_KEY = 'rabbit-rpc-ui.token';

/** The token: from the address's fragment (then removed from the address bar), else this tab's. */
function takeToken(): string {
  const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match?.[1] !== undefined) {
    sessionStorage.setItem(TOKEN_KEY, match[1]);
    history.replaceState(null, '', location.pathname);
    return match[1];
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export const api = new ApiClient(takeToken());
