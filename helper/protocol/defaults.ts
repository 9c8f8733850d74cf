/**
 * Where a client finds the helper by default. Here, in the shared protocol
 * module, because Electron main may import only helper/protocol/.
 */

/** The helper's socket (root:GROUP 0660 in a root:GROUP 0750 directory). */
export const DEFAULT_SOCKET_PATH = '/run/portcullis/helper.sock';

/** The per-launch token, owned by the user the helper serves, mode 0400. */
export const DEFAULT_TOKEN_PATH = '/run/portcullis/token';
