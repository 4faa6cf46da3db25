import { GoogleAuth } from 'google-auth-library';

import { LabError, errorMessage } from '../errors.js';

/**
 * Fails early, with the command that fixes it, when Application Default Credentials are
 * missing, instead of letting the first API call fail with a less helpful message.
 */
export async function checkCredentials(projectId: string): Promise<void> {
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  try {
    const client = await auth.getClient();
    await client.getAccessToken();
  } catch (error) {
    throw new LabError(`No Google Cloud credentials were found (${errorMessage(error)}).`, {
      hint:
        'Run `gcloud auth application-default login`, then try again. ' +
        `The lab will use project ${projectId}.`,
      cause: error,
    });
  }
}
