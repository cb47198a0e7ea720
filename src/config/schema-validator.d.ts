/**
 * The config file's JSON Schema compiled ahead of time by ajv (standalone code): written into dist by
 * config/build-schema-validator.js at build time, so no schema compiler is loaded to validate a config.
 */
export interface SchemaError {
  /** JSON pointer of the offending value: "/versions/v1". */
  instancePath: string;
  /** JSON pointer of the schema keyword that failed: "#/properties/server/properties/port/maximum". */
  schemaPath: string;
  message?: string;
  /** The schema keyword that failed ("enum", "type", …) and its details (for "enum": `allowedValues`). */
  keyword: string;
  params: { allowedValues?: unknown[] } & Record<string, unknown>;
  /** Set on the errors of a name checked by `propertyNames`: the name that failed. */
  propertyName?: string;
}

/** True when `data` matches the schema; otherwise `validate.errors` says why (all errors, not just the first). */
export declare const validate: ((data: unknown) => boolean) & { errors?: SchemaError[] | null };
