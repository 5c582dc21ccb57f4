namespace Rpt.Portal.Data;

/// <summary>
/// One page of a longer list. <see cref="Total"/> is given where it is cheap to know (counted from rollups,
/// or a short list); a list of millions is not counted just to say "page 1 of N": it says whether there is
/// more, and <see cref="NextCursor"/> opens the next page from where this one ended (keyset pagination).
/// </summary>
public sealed record Paged<T>(IReadOnlyList<T> Items, int Page, int PageSize, long? Total, string? NextCursor = null)
{
    public bool HasMore => NextCursor is not null || Total is { } total && (long)Page * PageSize < total;
}
