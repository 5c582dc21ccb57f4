namespace Rpt.Portal.Tests.Support;

/// <summary>
/// What someone with the database's owner rights could do to a stored row, on either engine: list a table's columns,
/// read a value as a literal that writes it back exactly, and change it into another value of its type.
/// </summary>
public static class Tamper
{
    /// <summary>The table's columns with their declared types, as the engine reports them.</summary>
    public static List<(string Name, string Type)> Columns(PortalHarness h, string table)
    {
        using var c = h.OpenDb();
        using var cmd = c.CreateCommand();
        cmd.CommandText = TestEngine.IsPostgres
            ? $"SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
            : $"SELECT name, type FROM pragma_table_info('{table}')";
        using var r = cmd.ExecuteReader();
        var columns = new List<(string, string)>();
        while (r.Read()) columns.Add((r.GetString(0), r.GetString(1).ToLowerInvariant()));
        return columns;
    }

    /// <summary>The value as an SQL literal (NULL included) that restores it byte for byte.</summary>
    public static string Literal(PortalHarness h, string table, string column, string where)
    {
        using var c = h.OpenDb();
        using var cmd = c.CreateCommand();
        cmd.CommandText = TestEngine.IsPostgres
            ? $"SELECT quote_nullable({Name(column)}) FROM {table} WHERE {where}"
            : $"SELECT quote({column}) FROM {table} WHERE {where}";
        return (string)cmd.ExecuteScalar()!;
    }

    /// <summary>An assignment that changes the column's value into another of its type (NULL into a value).</summary>
    public static string Change(string column, string type)
    {
        if (!TestEngine.IsPostgres)
            return $"{column} = CASE WHEN {column} IS NULL THEN 'x' WHEN typeof({column}) = 'integer' THEN {column} + 1 ELSE {column} || 'x' END";
        var c = Name(column);
        return type switch
        {
            "bigint" or "integer" or "smallint" or "numeric" => $"{c} = COALESCE({c}, 0) + 1",
            "boolean" => $"{c} = NOT COALESCE({c}, FALSE)",
            "date" => $"{c} = COALESCE({c}, DATE '2000-01-01') + 1",
            _ => $"{c} = COALESCE({c}, '') || 'x'",
        };
    }

    /// <summary>The column as SQL names it ("internal" is a reserved word on PostgreSQL).</summary>
    public static string Name(string column) => TestEngine.IsPostgres && column == "internal" ? "\"internal\"" : column;
}
