/**
 * The runtime schema of what a page may send the web host over its WebSocket:
 * the envelope of src-main/common/web-protocol.ts (WsClientMessage). An
 * invoke's argument is checked apart, per channel (invoke-args.ts).
 */
import * as v from 'valibot';
import {
  INVOKE_CHANNELS,
  PUSH_CHANNELS,
  type InvokeChannel,
  type PushChannel,
} from '../common/api.js';

const RequestId = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(0),
  v.maxValue(Number.MAX_SAFE_INTEGER),
);
const PushChannelName = v.picklist(PUSH_CHANNELS as [PushChannel, ...PushChannel[]]);

export const WsClientMessageSchema = v.variant('type', [
  v.object({ type: v.literal('hello'), session: v.pipe(v.string(), v.maxLength(512)) }),
  v.object({
    type: v.literal('invoke'),
    id: RequestId,
    channel: v.picklist(INVOKE_CHANNELS as [InvokeChannel, ...InvokeChannel[]]),
    arg: v.optional(v.unknown()),
  }),
  v.object({ type: v.literal('subscribe'), channel: PushChannelName }),
  v.object({ type: v.literal('unsubscribe'), channel: PushChannelName }),
]);
