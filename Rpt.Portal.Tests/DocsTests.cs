using System.Text.RegularExpressions;

namespace Rpt.Portal.Tests;

/// <summary>What the repository tells a reader is there: every document a comment cites, every kind of test the README lists.</summary>
[Trait("Kind", "Unit")]
public class DocsTests
{
    private static readonly string Root = Browser.BrowserFixture.RepositoryRoot();

    private static IEnumerable<string> Sources(string project) =>
        Directory.EnumerateFiles(Path.Combine(Root, project), "*.*", SearchOption.AllDirectories)
            .Where(f => (f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".razor", StringComparison.Ordinal))
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    [Fact]
    public void EveryDocumentTheCodeCites_IsInTheRepository()
    {
        var cited = Sources("Rpt.Portal").Concat(Sources("Rpt.Portal.Tests"))
            .Concat(Directory.EnumerateFiles(Path.Combine(Root, "docs"), "*.md")).Append(Path.Combine(Root, "README.md"))
            .SelectMany(f => Regex.Matches(File.ReadAllText(f), @"\b(?:docs/)?[A-Z][A-Z-]+\.md\b").Select(m => (File: f, Doc: m.Value)))
            .Where(c => c.Doc != "README.md")
            .ToList();
        Assert.NotEmpty(cited);
        var missing = cited.Where(c => !File.Exists(Path.Combine(Root, c.Doc.StartsWith("docs/", StringComparison.Ordinal) ? c.Doc : Path.Combine("docs", c.Doc))))
            .Select(c => $"{Path.GetRelativePath(Root, c.File)} cites {c.Doc}").Distinct().ToList();
        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    [Fact]
    public void TheReadme_NamesEveryKindOfTest()
    {
        var kinds = Sources("Rpt.Portal.Tests").SelectMany(f => Regex.Matches(File.ReadAllText(f), "Trait\\(\"Kind\", \"([A-Za-z]+)\"\\)").Select(m => m.Groups[1].Value))
            .Distinct().ToList();
        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        Assert.True(kinds.Count >= 6, string.Join(", ", kinds));
        Assert.All(kinds, k => Assert.True(readme.Contains($"`{k}`", StringComparison.Ordinal) || readme.Contains($"Kind={k}", StringComparison.Ordinal), $"the README does not name the test kind {k}"));
    }
}
