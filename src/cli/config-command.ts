import { CONFIG_KEYS, isConfigKey, parseConfigValue } from '../config.js';
import { LabError } from '../errors.js';
import { mark, terminalOutput } from './render.js';
import type { Session } from './session.js';

export function showConfig(session: Session, key: string | undefined): void {
  const out = terminalOutput(session.flags);
  if (key !== undefined) {
    if (!isConfigKey(key)) {
      throw new LabError(`"${key}" is not a setting.`, {
        hint: `Settings: ${CONFIG_KEYS.join(', ')}.`,
      });
    }
    if (session.flags.json)
      process.stdout.write(`${JSON.stringify({ [key]: session.config[key] })}\n`);
    else out.line(String(session.config[key]));
    return;
  }
  if (session.flags.json) {
    process.stdout.write(`${JSON.stringify(session.config, null, 2)}\n`);
    return;
  }
  const width = Math.max(...CONFIG_KEYS.map((k) => k.length));
  for (const k of CONFIG_KEYS) {
    const value = String(session.config[k]);
    const isDefault = session.store.config[k] === undefined;
    out.line(`${k.padEnd(width)}  ${value}${isDefault ? '' : '  (set)'}`);
  }
}

export function setConfig(session: Session, key: string, raw: string): void {
  const value = parseConfigValue(key, raw);
  session.store.setConfig(key, value);
  terminalOutput(session.flags).line(`${mark.ok} ${key} = ${String(value)}`);
}
