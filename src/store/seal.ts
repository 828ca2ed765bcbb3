/**
 * Sealed JSON for amendctl's own stores: a value encrypted with the payload codec's keys
 * (src/codec), so personal data (emails, names, what a connector observed) is never kept
 * in clear outside Temporal either, and key rotation works the same way: the current key
 * seals, every configured key opens.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmCodec, type CodecKeys, fromJson, loadCodecKeys, toJson } from '../codec';

export class Sealer {
  private readonly codec: AesGcmCodec;

  constructor(keys: CodecKeys) {
    this.codec = new AesGcmCodec(keys);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): Sealer {
    return new Sealer(loadCodecKeys(env));
  }

  seal(value: unknown): Buffer {
    const payload = this.codec.encrypt(defaultPayloadConverter.toPayload(value));
    return Buffer.from(JSON.stringify(toJson(payload)), 'utf8');
  }

  open<T>(sealed: Buffer | string): T {
    const payload: Payload = this.codec.decrypt(
      fromJson(JSON.parse(Buffer.isBuffer(sealed) ? sealed.toString('utf8') : sealed)),
    );
    return defaultPayloadConverter.fromPayload<T>(payload);
  }
}
