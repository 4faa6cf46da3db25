import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';

import { LabError } from '../../errors.js';

/**
 * Finds the official Pub/Sub emulator (a Java program shipped with the Google Cloud SDK) and a
 * `java` to run it with. The emulator's own launcher script is read, not run: it names the jar
 * (and, in some releases, the main class), and starting the JVM directly saves the launcher's
 * shell work and gcloud's Python start-up.
 */

export const EMULATOR_DIR_ENV = 'CYMBAL_LAB_PUBSUB_EMULATOR';

const EMULATOR_SUBDIR = join('platform', 'pubsub-emulator');
const WELL_KNOWN_SDK_ROOTS = [
  '/usr/lib/google-cloud-sdk',
  '/usr/share/google-cloud-sdk',
  '/opt/google-cloud-sdk',
  join(homedir(), 'google-cloud-sdk'),
];

export const INSTALL_EMULATOR_HINT =
  'Install it with `gcloud components install pubsub-emulator` (or the Debian package ' +
  '`google-cloud-cli-pubsub-emulator`), or point ' +
  `${EMULATOR_DIR_ENV} at its directory or jar.`;

export const INSTALL_JAVA_HINT =
  'Install a Java 17 runtime, such as the Debian package `openjdk-17-jre-headless`, or set ' +
  'JAVA_HOME.';

export interface EmulatorCommand {
  /** The `java` executable. */
  java: string;
  /** Arguments that select the program: `-jar JAR` or `-cp CLASSPATH MAIN`. */
  programArgs: string[];
  /** The main jar, whose path and size key the class-data cache. */
  jar: string;
  /** The emulator's directory (`.../platform/pubsub-emulator`) when known. */
  home: string;
}

/** Resolves the emulator and java, or throws a LabError that says how to install them. */
export function locateEmulator(env: NodeJS.ProcessEnv = process.env): EmulatorCommand {
  const program = locateProgram(env);
  return { java: locateJava(env), ...program };
}

function locateProgram(env: NodeJS.ProcessEnv): Omit<EmulatorCommand, 'java'> {
  const configured = env[EMULATOR_DIR_ENV];
  if (configured) {
    const path = resolve(configured);
    if (!existsSync(path)) {
      throw new LabError(`${EMULATOR_DIR_ENV} points at ${path}, which does not exist.`, {
        hint: INSTALL_EMULATOR_HINT,
      });
    }
    if (statSync(path).isFile()) {
      return { jar: path, programArgs: ['-jar', path], home: dirname(dirname(path)) };
    }
    return programIn(path);
  }
  for (const root of WELL_KNOWN_SDK_ROOTS) {
    const dir = join(root, EMULATOR_SUBDIR);
    if (existsSync(dir)) return programIn(dir);
  }
  const root = sdkRootFromGcloud(env);
  if (root && existsSync(join(root, EMULATOR_SUBDIR)))
    return programIn(join(root, EMULATOR_SUBDIR));
  throw new LabError('The Google Cloud Pub/Sub emulator is not installed.', {
    hint: INSTALL_EMULATOR_HINT,
  });
}

/** Reads the launcher script in `dir/bin` for the class path and main class. */
function programIn(dir: string): Omit<EmulatorCommand, 'java'> {
  const launcher = join(dir, 'bin', 'cloud-pubsub-emulator');
  let classPath: string[] = [];
  let mainClass: string | undefined;
  if (existsSync(launcher)) {
    const script = readFileSync(launcher, 'utf8');
    const line = /^CLASSPATH=(.+)$/m.exec(script)?.[1];
    if (line) {
      classPath = line
        .replace(/^["']|["']$/g, '')
        .split(':')
        .map((entry) => entry.replace(/\$\{?APP_HOME\}?/, dir));
    }
    // Releases that launch with `-jar` name the main class only in the jar's manifest.
    if (!/-jar\b/.test(script)) mainClass = /\b(com\.google\.[\w.]+\.Main)\b/.exec(script)?.[1];
  }
  if (classPath.length === 0) {
    const lib = join(dir, 'lib');
    const jars = existsSync(lib) ? readdirSync(lib).filter((f) => f.endsWith('.jar')) : [];
    classPath = jars.map((jar) => join(lib, jar));
  }
  const jar =
    classPath.find((entry) => /cloud-pubsub-emulator.*\.jar$/.test(entry)) ?? classPath[0];
  if (!jar || !existsSync(jar)) {
    throw new LabError(`No Pub/Sub emulator jar was found in ${dir}.`, {
      hint: INSTALL_EMULATOR_HINT,
    });
  }
  const programArgs = mainClass ? ['-cp', classPath.join(':'), mainClass] : ['-jar', jar];
  return { jar, programArgs, home: dir };
}

function sdkRootFromGcloud(env: NodeJS.ProcessEnv): string | undefined {
  if (!findOnPath('gcloud', env)) return undefined;
  try {
    const out = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 15_000,
    });
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

function locateJava(env: NodeJS.ProcessEnv): string {
  if (env.JAVA_HOME) {
    const java = join(env.JAVA_HOME, 'bin', 'java');
    if (isExecutable(java)) return java;
    throw new LabError(`JAVA_HOME is ${env.JAVA_HOME}, but it has no bin/java.`, {
      hint: INSTALL_JAVA_HINT,
    });
  }
  const java = findOnPath('java', env);
  if (!java) {
    throw new LabError('Java is needed to run the Pub/Sub emulator and none was found.', {
      hint: INSTALL_JAVA_HINT,
    });
  }
  return java;
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
