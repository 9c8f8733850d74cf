/** The help text of `portcullis start`. */
import { GUARD_SOCKET, GUARD_STATE_DIR } from './start-args.js';

export const START_USAGE = `Usage: portcullis start [--demo] [--ui auto|web|electron|none] [--no-open]
                        [--port N] [--netns NAME] [--socket PATH] [--state-dir DIR]
                        [--verbose] [-- HELPER-OPTION...]

Runs the firewall with its UI, as root (sudo npx portcullis start): the helper
guards this machine's new connections and asks you in the UI. Via sudo or pkexec
the UI runs as you, and the helper lets you in (--allow-uid). Ctrl-C, SIGTERM or
SIGHUP stop both; the helper removes its rules.

  --demo             guard nothing of this machine: a network namespace of its own
                     where curl, python3, bash and node connect every few seconds
                     to a peer namespace (veth, 198.18.42.0/24, DNS and servers),
                     so that prompts appear; all of it removed at the end
  --ui MODE          auto (default): the Electron window where its binary is
                     installed and a desktop session exists, else the web UI;
                     web, electron, or none (the helper alone)
  --no-open          print the web UI's one-time link, do not open a browser
                     (it is opened with xdg-open where a desktop session exists)
  --port N           the web UI's port on 127.0.0.1 (default: any free port)
  --netns NAME       guard the named network namespace instead of this machine
  --socket PATH      the helper's socket (default ${GUARD_SOCKET}; the demo's
                     is in a temporary directory); its token is written next to it
  --state-dir DIR    rules, history and settings (default ${GUARD_STATE_DIR};
                     the demo's are temporary)
  --verbose          every helper log line, not only its warnings and errors
  -- OPTIONS         handed to \`portcullis helper\` (e.g. -- --fail-closed
                     --prompt-timeout 60; see portcullis helper --help)

Exit status: 0 after a stop signal and a clean stop, 1 when a part cannot start
or the helper stops on its own, 2 on bad arguments.
`;
