using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;
using Rpt.Portal.Data.Sqlite;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// Copies a SQLite database of Rpt Portal into an empty PostgreSQL database: the schema by PostgreSQL's migrations, then
/// every table (Identity, API keys, the ledger, the audit records and their rollups, …) row by row with binary COPY, in
/// the order the foreign keys ask, identity sequences set past the copied ids. A target that holds any Rpt Portal data
/// is refused, so a second run cannot double anything. The caller verifies the copy through the portal's own services.
/// </summary>
public static class SqliteToPostgres
{
    public sealed record TableCopy(string Table, long Rows);

    /// <summary>Host, port and database of a connection string, never its password.</summary>
    public static string Describe(string connectionString)
    {
        var csb = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{csb.Host}:{csb.Port}/{csb.Database}";
    }

    /// <summary>Whether <paramref name="target"/> is a PostgreSQL connection string (<c>Misuse</c> says why not), and why the
    /// database cannot take the copy (<c>Refusal</c>: unreachable, or not empty); both null when it can.</summary>
    public static async Task<(string? Misuse, string? Refusal)> CheckTargetAsync(string target, CancellationToken ct)
    {
        try
        {
            if (string.IsNullOrWhiteSpace(new NpgsqlConnectionStringBuilder(target).Host)) return ("it names no Host", null);
        }
        catch (ArgumentException ex)
        {
            return (ex.Message, null);
        }
        try
        {
            return (null, await RefusalAsync(target, ct));
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            return (null, $"--to: the PostgreSQL database at {Describe(target)} cannot be opened: {ex.Message}");
        }
    }

    private static async Task<string?> RefusalAsync(string target, CancellationToken ct)
    {
        await using var c = new NpgsqlConnection(target);
        await c.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("""
            SELECT string_agg(format('%I', table_name), ', ' ORDER BY table_name) FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
            """, c);
        var tables = await cmd.ExecuteScalarAsync(ct) as string;
        if (string.IsNullOrEmpty(tables)) return null;
        foreach (var table in tables.Split(", "))
        {
            if (table is "__ef_migrations_history") continue;
            await using var count = new NpgsqlCommand($"SELECT EXISTS (SELECT 1 FROM {table})", c); // format(%I) quoted it
            if (await count.ExecuteScalarAsync(ct) is true)
                return $"the target database is not empty (table {table} holds rows): data copy copies into an empty database only, so that nothing is copied twice";
        }
        return null;
    }

    /// <summary>Copies every table; the target's schema is migrated already (by the portal's own context on it).</summary>
    public static async Task<IReadOnlyList<TableCopy>> CopyAsync(SqliteDatabase source, string target, TextWriter progress, CancellationToken ct)
    {
        await using var pg = new NpgsqlConnection(target);
        await pg.OpenAsync(ct);
        using var sqlite = source.OpenSqlite();
        var copies = new List<TableCopy>();
        foreach (var table in await TablesInDependencyOrderAsync(pg, ct))
        {
            var columns = await ColumnsAsync(pg, table, ct);
            var sqliteColumns = SqliteColumns(sqlite, table);
            if (sqliteColumns.Count == 0) continue; // a table only PostgreSQL has: nothing to copy
            // usage_jobs.rowid is SQLite's implicit row id there; every other column is named alike on both.
            var select = string.Join(", ", columns.Select(c => sqliteColumns.Contains(c.Name) || c.Name != "rowid" ? Quote(c.Name) : "rowid"));
            long rows = 0;
            await using (var copy = await pg.BeginBinaryImportAsync($"COPY {Quote(table)} ({string.Join(", ", columns.Select(c => Quote(c.Name)))}) FROM STDIN (FORMAT BINARY)", ct))
            {
                using var read = sqlite.CreateCommand();
                read.CommandText = $"SELECT {select} FROM \"{table}\"";
                using var r = read.ExecuteReader();
                while (r.Read())
                {
                    await copy.StartRowAsync(ct);
                    for (var i = 0; i < columns.Count; i++) await WriteAsync(copy, r, i, columns[i], table, ct);
                    rows++;
                }
                await copy.CompleteAsync(ct);
            }
            foreach (var identity in columns.Where(c => c.Identity))
            {
                await using var setval = new NpgsqlCommand(
                    $"SELECT setval(pg_get_serial_sequence('{Quote(table)}', '{identity.Name}'), COALESCE((SELECT MAX({Quote(identity.Name)}) FROM {Quote(table)}), 0) + 1, false)", pg);
                await setval.ExecuteNonQueryAsync(ct);
            }
            copies.Add(new TableCopy(table, rows));
            await progress.WriteLineAsync($"  {table,-32} {rows,12:N0} rows");
        }
        return copies;
    }

    private static string Quote(string column) => $"\"{column}\"";

    private sealed record Column(string Name, string Type, bool Identity);

    private static async Task<List<string>> TablesInDependencyOrderAsync(NpgsqlConnection pg, CancellationToken ct)
    {
        var tables = new List<string>();
        await using (var cmd = new NpgsqlCommand("""
            SELECT table_name FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '__ef_migrations_history' ORDER BY table_name
            """, pg))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) tables.Add(r.GetString(0));
        var needs = tables.ToDictionary(t => t, _ => new HashSet<string>());
        await using (var cmd = new NpgsqlCommand("""
            SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
            WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
            """, pg))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                var (child, parent) = (r.GetString(0).Trim('"'), r.GetString(1).Trim('"'));
                if (child != parent && needs.TryGetValue(child, out var set)) set.Add(parent);
            }
        var ordered = new List<string>();
        var done = new HashSet<string>();
        while (ordered.Count < tables.Count)
        {
            var next = tables.Where(t => !done.Contains(t) && needs[t].All(done.Contains)).ToList();
            if (next.Count == 0) throw new InvalidOperationException($"the foreign keys of {string.Join(", ", tables.Except(done))} form a cycle");
            ordered.AddRange(next);
            done.UnionWith(next);
        }
        return ordered;
    }

    private static async Task<List<Column>> ColumnsAsync(NpgsqlConnection pg, string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT column_name, data_type, is_identity = 'YES' FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = @t ORDER BY ordinal_position
            """, pg);
        cmd.Parameters.AddWithValue("t", table);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var columns = new List<Column>();
        while (await r.ReadAsync(ct)) columns.Add(new Column(r.GetString(0), r.GetString(1), r.GetBoolean(2)));
        return columns;
    }

    private static HashSet<string> SqliteColumns(SqliteConnection sqlite, string table)
    {
        using var cmd = sqlite.CreateCommand();
        cmd.CommandText = "SELECT name FROM pragma_table_info($t)";
        cmd.Parameters.AddWithValue("$t", table);
        using var r = cmd.ExecuteReader();
        var names = new HashSet<string>(StringComparer.Ordinal);
        while (r.Read()) names.Add(r.GetString(0));
        return names;
    }

    /// <summary>One SQLite value as the PostgreSQL column's type: integers to booleans, text to dates and exact numerics.</summary>
    private static async Task WriteAsync(NpgsqlBinaryImporter copy, SqliteDataReader r, int i, Column column, string table, CancellationToken ct)
    {
        if (r.IsDBNull(i))
        {
            await copy.WriteNullAsync(ct);
            return;
        }
        try
        {
            switch (column.Type)
            {
                case "bigint": await copy.WriteAsync(r.GetInt64(i), NpgsqlDbType.Bigint, ct); break;
                case "integer": await copy.WriteAsync(checked((int)r.GetInt64(i)), NpgsqlDbType.Integer, ct); break;
                case "smallint": await copy.WriteAsync(checked((short)r.GetInt64(i)), NpgsqlDbType.Smallint, ct); break;
                case "boolean": await copy.WriteAsync(r.GetInt64(i) != 0, NpgsqlDbType.Boolean, ct); break;
                case "numeric":
                    await copy.WriteAsync(decimal.Parse(r.GetString(i), NumberStyles.Float, CultureInfo.InvariantCulture), NpgsqlDbType.Numeric, ct); break;
                case "date": await copy.WriteAsync(DateOnly.ParseExact(r.GetString(i), "yyyy-MM-dd", CultureInfo.InvariantCulture), NpgsqlDbType.Date, ct); break;
                case "uuid": await copy.WriteAsync(r.GetGuid(i), NpgsqlDbType.Uuid, ct); break;
                case "double precision": await copy.WriteAsync(r.GetDouble(i), NpgsqlDbType.Double, ct); break;
                case "bytea": await copy.WriteAsync((byte[])r.GetValue(i), NpgsqlDbType.Bytea, ct); break;
                case "character varying": await copy.WriteAsync(r.GetString(i), NpgsqlDbType.Varchar, ct); break;
                case "text": await copy.WriteAsync(r.GetString(i), NpgsqlDbType.Text, ct); break;
                default: throw new NotSupportedException($"the column type {column.Type} has no copy rule");
            }
        }
        catch (Exception ex) when (ex is FormatException or InvalidCastException or OverflowException or NotSupportedException)
        {
            throw new InvalidDataException($"{table}.{column.Name}: the value '{r.GetValue(i)}' cannot be copied as {column.Type}: {ex.Message}", ex);
        }
    }
}
