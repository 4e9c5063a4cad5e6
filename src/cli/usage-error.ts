/**
 * A user mistake on the command line that is not a library error (a bad flag combination, a value
 * out of range): the CLI prints its message on one line and exits with code 2.
 *
 * @module
 */
export class UsageError extends Error {}
