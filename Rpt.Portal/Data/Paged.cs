namespace Rpt.Portal.Data;

/// <summary>One page of a longer list, and how many items the whole list has.</summary>
public sealed record Paged<T>(IReadOnlyList<T> Items, int Page, int PageSize, long Total)
{
    public bool HasMore => (long)Page * PageSize < Total;
}
