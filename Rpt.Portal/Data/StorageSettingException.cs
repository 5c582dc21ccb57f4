namespace Rpt.Portal.Data;

/// <summary>
/// A storage setting that stops start-up: a wrong provider name, a connection string of the other engine, a database
/// that cannot be reached. Its message is one line that names the setting; the portal and the command line print it
/// and exit with status 1, without a stack trace.
/// </summary>
public sealed class StorageSettingException(string message, Exception? inner = null) : Exception(message, inner);
