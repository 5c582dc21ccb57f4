using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Rpt.Portal.Ledger;

/// <summary>Enums are stored as snake_case text ("plan_change"), the same words the API uses.</summary>
public static class EnumText
{
    public static string ToText<T>(T value) where T : struct, Enum => Snake(value.ToString());

    public static T Parse<T>(string text) where T : struct, Enum =>
        Enum.Parse<T>(text.Replace("_", ""), ignoreCase: true);

    public static bool TryParse<T>(string? text, out T value) where T : struct, Enum
    {
        value = default;
        return text is not null && !text.Any(char.IsDigit) && Enum.TryParse(text.Replace("_", ""), ignoreCase: true, out value)
            && Enum.IsDefined(value);
    }

    public static ValueConverter<T, string> Converter<T>() where T : struct, Enum => new(v => ToText(v), v => Parse<T>(v));

    private static string Snake(string name)
    {
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }
}
