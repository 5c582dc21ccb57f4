using System.Data.Common;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

/// <summary>
/// A hold on credits for a job: what it holds, what the job has drawn of it since, until it is released or expires.
/// Holds are not money: they never enter the ledger's chain; they are stored so that a crash loses none.
/// </summary>
public sealed class CreditReservation
{
    private CreditReservation() { }

    public CreditReservation(string tenantId, string id, string? jobId, long heldMicroCredits, long jobMicroAtHold, DateTimeOffset createdAt, DateTimeOffset expiresAt)
    {
        TenantId = tenantId;
        Id = id;
        JobId = jobId;
        HeldMicroCredits = heldMicroCredits;
        JobMicroAtHold = jobMicroAtHold;
        CreatedAt = Ms(createdAt);
        ExpiresAt = Ms(expiresAt);
    }

    /// <summary>Instants are stored to the millisecond: a hold answers the same before and after it is read back.</summary>
    private static DateTimeOffset Ms(DateTimeOffset at) => DateTimeOffset.FromUnixTimeMilliseconds(at.ToUnixTimeMilliseconds());

    public string TenantId { get; private set; } = "";
    /// <summary>The client's id for the hold: a retry with it answers the same hold.</summary>
    public string Id { get; private set; } = "";
    /// <summary>The job whose usage draws the hold down (usage events with this <c>job_id</c>).</summary>
    public string? JobId { get; private set; }
    public long HeldMicroCredits { get; private set; }
    /// <summary>What the job had been charged when the hold was placed: a record beside <see cref="DrawnMicroCredits"/>, which counts
    /// only usage after it; nothing is computed from it.</summary>
    public long JobMicroAtHold { get; private set; }
    /// <summary>
    /// What the job's usage has drawn of the hold so far, at most the hold: the ingestion writer adds each commit's billed
    /// credits of the job to every unreleased hold of it, in the commit that adds them to the job's total. The balance then
    /// sums what the tenant's active holds keep from their own rows, however many jobs run.
    /// </summary>
    public long DrawnMicroCredits { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset ExpiresAt { get; private set; }
    public DateTimeOffset? ReleasedAt { get; private set; }
    /// <summary>What the job had drawn when the hold was released (kept, so the job page shows it later).</summary>
    public long? DrawnAtReleaseMicroCredits { get; private set; }

    public bool ActiveAt(DateTimeOffset now) => ReleasedAt is null && ExpiresAt > now;

    public void Release(DateTimeOffset at, long drawn)
    {
        ReleasedAt ??= Ms(at);
        DrawnAtReleaseMicroCredits ??= drawn;
    }

    public void Extend(DateTimeOffset to) => ExpiresAt = Ms(to);

    /// <summary>A hold as stored: what its job has drawn of it so far.</summary>
    internal CreditReservation WithDrawn(long drawn)
    {
        DrawnMicroCredits = drawn;
        return this;
    }
}

public sealed class CreditReservationConfiguration : IEntityTypeConfiguration<CreditReservation>
{
    public void Configure(EntityTypeBuilder<CreditReservation> b)
    {
        b.ToTable("credit_reservations", t =>
        {
            t.HasCheckConstraint("ck_reservation_held_positive", "held_micro_credits > 0");
            t.HasCheckConstraint("ck_reservation_drawn_within_held", "drawn_micro_credits >= 0 AND drawn_micro_credits <= held_micro_credits");
        });
        b.HasKey(r => new { r.TenantId, r.Id });
        b.Property(r => r.TenantId).HasMaxLength(64);
        b.Property(r => r.Id).HasMaxLength(Reservations.MaxId);
        b.Property(r => r.JobId).HasMaxLength(128);
        // The active holds of a tenant: the balance reads them on every request.
        b.HasIndex(r => new { r.TenantId, r.ReleasedAt, r.ExpiresAt }).HasDatabaseName("ix_reservations_tenant_active");
        // The unreleased holds of a job: the ingestion writer adds to what each has drawn, once per job in each commit.
        b.HasIndex(r => new { r.TenantId, r.JobId }).HasDatabaseName("ix_reservations_tenant_job_unreleased").HasFilter("released_at IS NULL");
    }
}

/// <summary>A hold as the API shows it.</summary>
public sealed record ReservationView(string Id, string Status, long HeldMicroCredits, long DrawnMicroCredits, string? JobId, DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt, DateTimeOffset? ReleasedAt, bool IntoOverage = false)
{
    public long RemainingMicroCredits => Status == "held" ? Math.Max(0, HeldMicroCredits - DrawnMicroCredits) : 0;
}

/// <summary><c>Declined</c>: the caller's own check, made with the balance before a new hold is placed (the budgets), said no.</summary>
public enum ReservationOutcome { Held, Repeated, Refused, Invalid, Conflict, NotFound, Done, Declined }

public sealed record ReservationResult(ReservationOutcome Outcome, ReservationView? Hold, string? Error = null, string? Field = null, long? AvailableCredits = null);

/// <summary>
/// Holds credits for long jobs (docs/RULES.md, "Reservations"). A hold is placed under the tenant's lock, so parallel holds
/// on one tenant, from any number of instances, never hold more than is available: on a plan that stops at its allocation
/// one that does not fit is refused with what is available; on an overage plan it is granted and runs into overage.
/// The job's usage draws the hold down as it is accepted (its rated credits since the hold); release frees the rest at
/// once; a hold expires by itself, and is extended up to 24 h after it was placed.
/// </summary>
public sealed partial class Reservations(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database,
    GetBalance balances, TimeProvider time, TenantChanges changes)
{
    public const int MaxId = 128;
    public const long MaxCredits = 100_000_000_000;
    public const int MinSeconds = 10;
    public const int MaxSeconds = 86_400;
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromHours(24);

    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex IdPattern();

    public static string? CheckId(string? id, string field = "id") =>
        id is not null && IdPattern().IsMatch(id) ? null : $"{field}: 1 to {MaxId} of A-Z, a-z, 0-9, '_', '.', ':' and '-'";

    /// <param name="also">Statements read with the balance, in the hold's transaction (the request's hard budgets).</param>
    /// <param name="mayHold">Asked, once <paramref name="also"/> is read, before a new hold is placed (a retry of a hold is not asked):
    /// false declines it.</param>
    public async Task<ReservationResult> ReserveAsync(string tenantId, string? id, long credits, string? jobId, int? expiresInSeconds,
        CancellationToken cancellationToken = default, IBatchedRead? also = null, Func<bool>? mayHold = null)
    {
        if (CheckId(id) is { } bad) return new(ReservationOutcome.Invalid, null, bad, "id");
        if (credits is < 1 or > MaxCredits) return new(ReservationOutcome.Invalid, null, $"credits: 1 to {MaxCredits:N0}", "credits");
        if (jobId is not null && CheckId(jobId, "job_id") is { } badJob) return new(ReservationOutcome.Invalid, null, badJob, "job_id");
        var seconds = expiresInSeconds ?? 3600;
        if (seconds is < MinSeconds or > MaxSeconds)
            return new(ReservationOutcome.Invalid, null, $"expires_in_seconds: {MinSeconds} to {MaxSeconds} (24 h)", "expires_in_seconds");

        // Direct statements on one connection, not a context: a hold is on a job runner's path and its calls are counted in
        // milliseconds (docs/PERFORMANCE.md). The write turn first (SQLite), then the transaction (IMMEDIATE on SQLite).
        using var turn = await database.TakeWriteTurnAsync(cancellationToken);
        await using var connection = database.Open();
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        // Every hold of the tenant is placed under its lock (TenantLock: the tenant's row on PostgreSQL, the write lock that
        // IMMEDIATE took on SQLite): the balance and the holds read below cannot change meanwhile. The lock's statement goes
        // first in the balance's batch (the statements after it read what was committed before the lock was granted), and
        // also brings the hold of this id, if there is one: one round trip for the lock, the retry check and the balance.
        var now = time.GetUtcNow();
        var micro = Credit.ToMicro(credits);
        var locked = new LockRead(tenantId, id!, database.Engine);
        var balance = await balances.ReadAsync(connection, tx, tenantId, now, locked, also, cancellationToken);
        if (balance is null || !locked.TenantFound) return new(ReservationOutcome.NotFound, null, $"unknown tenant '{tenantId}'");
        if (locked.Existing is { } existing)
            return existing.HeldMicroCredits == micro && existing.JobId == jobId
                ? new(ReservationOutcome.Repeated, View(existing, now, Drawn(existing)))
                : new(ReservationOutcome.Conflict, null, $"id: '{id}' already names a hold of {Credit.Format(existing.HeldMicroCredits)} credits for job '{existing.JobId}'", "id");

        if (mayHold is not null && !mayHold()) return new(ReservationOutcome.Declined, null);
        var intoOverage = false;
        if (!balance.Unlimited)
        {
            var available = checked(balance.AllocatedMicroCredits - balance.ConsumedMicroCredits - balance.ReservedMicroCredits);
            if (micro > available)
            {
                if (balance.Overage != OveragePolicy.Overage)
                    return new(ReservationOutcome.Refused, null,
                        $"credits: {credits:N0} do not fit in the {Credit.FloorCredits(Math.Max(0, available)):N0} credits available on the {balance.PlanCode} plan, which stops at its allocation",
                        "credits", Credit.FloorCredits(Math.Max(0, available)));
                intoOverage = true;
            }
        }
        // What the job had been charged before the hold is read by the INSERT itself (0 for no job, or one not yet seen); what
        // its usage draws of the hold from now on, the ingestion writer adds to the hold's row.
        var createdAt = now.ToUnixTimeMilliseconds();
        var expiresAt = now.AddSeconds(seconds).ToUnixTimeMilliseconds();
        long jobAtHold;
        // Without a job, no parameter stands for it: PostgreSQL cannot type a null compared and inserted at once.
        var job = jobId is null ? "NULL, @held, 0" : "@j, @held, COALESCE((SELECT micro_credits FROM usage_jobs WHERE tenant_id = @t AND job_id = @j), 0)";
        await using (var insert = connection.Command($"""
            INSERT INTO credit_reservations (tenant_id, id, job_id, held_micro_credits, job_micro_at_hold, created_at, expires_at, drawn_micro_credits)
            VALUES (@t, @i, {job}, @created, @expires, 0)
            RETURNING job_micro_at_hold
            """, tx).With("t", tenantId).With("i", id).With("held", micro).With("created", createdAt).With("expires", expiresAt))
        {
            if (jobId is not null) insert.With("j", jobId);
            // The commit rides with the INSERT on PostgreSQL: a new hold is two round trips, the balance's batch and this.
            jobAtHold = Convert.ToInt64(await database.ScalarThenCommitAsync(insert, tx, cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        }
        var hold = new CreditReservation(tenantId, id!, jobId, micro, jobAtHold, now, DateTimeOffset.FromUnixTimeMilliseconds(expiresAt));
        changes.Publish(TenantChange.HoldChanged, tenantId);
        return new(ReservationOutcome.Held, View(hold, now, 0) with { IntoOverage = intoOverage });
    }

    /// <summary>The tenant's lock (<c>FOR UPDATE</c> of its row on PostgreSQL; on SQLite the IMMEDIATE transaction holds it already),
    /// read first in the balance's batch: whether the tenant exists, and the hold of this id if there is one.</summary>
    private sealed class LockRead(string tenantId, string id, StorageEngine engine) : IBatchedRead
    {
        public bool TenantFound { get; private set; }
        public CreditReservation? Existing { get; private set; }

        public string Sql { get; } = $"""
            SELECT {HoldColumns}, t.id FROM tenants t LEFT JOIN credit_reservations r ON r.tenant_id = t.id AND r.id = @i
            WHERE t.id = @t{TenantLock.Clause(engine, "t")};

            """;

        public void Bind(DbCommand command) => command.With("i", id);

        public void Read(DbDataReader reader)
        {
            if (!reader.Read()) return;
            TenantFound = true;
            Existing = reader.IsDBNull(1) ? null : Hold(reader, tenantId, id);
        }
    }

    private const string Columns = "job_id, held_micro_credits, job_micro_at_hold, created_at, expires_at, released_at, drawn_at_release_micro_credits, drawn_micro_credits";

    /// <summary><see cref="Columns"/> of the hold aliased <c>r</c>.</summary>
    private static readonly string HoldColumns = string.Join(", ", Columns.Split(", ").Select(c => "r." + c));

    /// <summary>The tenant's hold of this id, read on the caller's connection; null when there is none.</summary>
    private static async Task<CreditReservation?> FindAsync(DbConnection connection, string tenantId, string id, CancellationToken cancellationToken)
    {
        await using var cmd = connection.Command($"SELECT {Columns} FROM credit_reservations WHERE tenant_id = @t AND id = @i").With("t", tenantId).With("i", id);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? Hold(r, tenantId, id) : null;
    }

    /// <summary>A hold from a row of <see cref="Columns"/>.</summary>
    private static CreditReservation Hold(DbDataReader r, string tenantId, string id)
    {
        var hold = new CreditReservation(tenantId, id, r.IsDBNull(0) ? null : r.GetString(0), r.GetInt64(1), r.GetInt64(2),
            DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4))).WithDrawn(r.GetInt64(7));
        if (!r.IsDBNull(5)) hold.Release(DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)), r.IsDBNull(6) ? 0 : r.GetInt64(6));
        return hold;
    }

    /// <summary>One UPDATE of the tenant's hold <c>@i</c> (<paramref name="update"/> names <c>@t</c> and <c>@i</c>), under the write
    /// turn; the hold as it is after, or null when the statement's WHERE kept it as it was.</summary>
    private async Task<CreditReservation?> ChangeAsync(DbConnection connection, string tenantId, string id, string update, Func<DbCommand, DbCommand> bind,
        CancellationToken cancellationToken)
    {
        using var turn = await database.TakeWriteTurnAsync(cancellationToken);
        await using var cmd = bind(connection.Command($"{update}\nRETURNING {Columns}")).With("t", tenantId).With("i", id);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? Hold(r, tenantId, id) : null;
    }

    /// <summary>A hold as it is now (a job runner polls it): one keyed read.</summary>
    public async Task<ReservationResult> GetAsync(string tenantId, string id, CancellationToken cancellationToken = default)
    {
        await using var connection = database.Open();
        var hold = await FindAsync(connection, tenantId, id, cancellationToken);
        return hold is null ? new(ReservationOutcome.NotFound, null, $"no hold '{id}'") : new(ReservationOutcome.Done, View(hold, time.GetUtcNow(), Drawn(hold)));
    }

    /// <summary>The holds placed for a job, newest first (at most <paramref name="limit"/>): the job page shows them beside what it cost.</summary>
    public async Task<IReadOnlyList<ReservationView>> ForJobAsync(string tenantId, string jobId, int limit = 20, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var holds = await db.Reservations.AsNoTracking().Where(r => r.TenantId == tenantId && r.JobId == jobId)
            .OrderByDescending(r => r.CreatedAt).Take(limit).ToListAsync(cancellationToken);
        var now = time.GetUtcNow();
        return holds.Select(h => View(h, now, Drawn(h))).ToList();
    }

    /// <summary>Releases a hold: one statement that stamps it released (at its expiry, if it expired first) with what its job
    /// had drawn of it; a hold released before answers as it is.</summary>
    public async Task<ReservationResult> ReleaseAsync(string tenantId, string id, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        await using var connection = database.Open();
        var hold = await ChangeAsync(connection, tenantId, id, """
            UPDATE credit_reservations SET
              released_at = CASE WHEN expires_at <= @now THEN expires_at ELSE @now END,
              drawn_at_release_micro_credits = drawn_micro_credits
            WHERE tenant_id = @t AND id = @i AND released_at IS NULL
            """, cmd => cmd.With("now", now.ToUnixTimeMilliseconds()), cancellationToken);
        if (hold is not null)
        {
            changes.Publish(TenantChange.HoldChanged, tenantId);
            return new(ReservationOutcome.Done, View(hold, now, hold.DrawnAtReleaseMicroCredits ?? 0));
        }
        // Released before (a retry), or no such hold.
        hold = await FindAsync(connection, tenantId, id, cancellationToken);
        return hold is null ? new(ReservationOutcome.NotFound, null, $"no hold '{id}'") : new(ReservationOutcome.Done, View(hold, now, Drawn(hold)));
    }

    /// <summary>Extends a hold (a heartbeat): one UPDATE that moves its expiry only while it is held and within 24 h of when it
    /// was placed; when it changes nothing, the hold as it is says why (none, released, expired, past 24 h).</summary>
    public async Task<ReservationResult> ExtendAsync(string tenantId, string id, int expiresInSeconds, CancellationToken cancellationToken = default)
    {
        if (expiresInSeconds is < MinSeconds or > MaxSeconds)
            return new(ReservationOutcome.Invalid, null, $"expires_in_seconds: {MinSeconds} to {MaxSeconds} (24 h)", "expires_in_seconds");
        var now = time.GetUtcNow();
        var wanted = now.AddSeconds(expiresInSeconds).ToUnixTimeMilliseconds();
        await using var connection = database.Open();
        var hold = await ChangeAsync(connection, tenantId, id, """
            UPDATE credit_reservations SET expires_at = @wanted
            WHERE tenant_id = @t AND id = @i AND released_at IS NULL AND expires_at > @now AND @wanted <= created_at + @lifetime
            """, cmd => cmd.With("wanted", wanted).With("now", now.ToUnixTimeMilliseconds()).With("lifetime", (long)MaxLifetime.TotalMilliseconds),
            cancellationToken);
        if (hold is not null) return new(ReservationOutcome.Done, View(hold, now, Drawn(hold)));
        hold = await FindAsync(connection, tenantId, id, cancellationToken);
        if (hold is null) return new(ReservationOutcome.NotFound, null, $"no hold '{id}'");
        if (!hold.ActiveAt(now))
            return new(ReservationOutcome.Conflict, null, $"id: the hold '{id}' was {(hold.ReleasedAt is null ? "expired" : "released")}; place a new one", "id");
        var limit = hold.CreatedAt + MaxLifetime;
        return new(ReservationOutcome.Invalid, null, $"expires_in_seconds: a hold lasts at most 24 h in all; this one may run until {limit:yyyy-MM-ddTHH:mm:ssZ}", "expires_in_seconds");
    }

    /// <summary>
    /// The statement that sums what the tenant's (<c>@t</c>) active holds still keep at <c>@now</c>: each hold's amount less
    /// what its job has drawn of it, both on the hold's row (the writer keeps <c>drawn_micro_credits</c>). It is read in the
    /// balance's batch, in its snapshot: one index range of the tenant's active holds, whatever their jobs' usage. The cast
    /// makes an overflowing sum an error on both engines.
    /// </summary>
    internal const string OutstandingSql = """
        SELECT CAST(COALESCE(SUM(r.held_micro_credits - r.drawn_micro_credits), 0) AS BIGINT) FROM credit_reservations r
        WHERE r.tenant_id = @t AND r.released_at IS NULL AND r.expires_at > @now;
        """;

    /// <summary>
    /// What the writer runs for each job of a commit that billed it credits (<c>@t</c>, <c>@j</c>, <c>@d</c> µcr): every unreleased
    /// hold of the job draws them, up to what it holds. An expired hold that is not released yet draws too, so that its release
    /// shows what the job used while it ran. One text for both engines; PostgreSQL's writer runs it for many jobs at once.
    /// </summary>
    internal static string DrawSet(string amount) =>
        $"drawn_micro_credits = CASE WHEN drawn_micro_credits + {amount} >= held_micro_credits THEN held_micro_credits ELSE drawn_micro_credits + {amount} END";

    /// <summary>What the hold's job has drawn of it: kept on the hold, and fixed at its release.</summary>
    private static long Drawn(CreditReservation hold) => hold.DrawnAtReleaseMicroCredits ?? hold.DrawnMicroCredits;

    private static ReservationView View(CreditReservation r, DateTimeOffset now, long drawn) => new(r.Id,
        r.ReleasedAt is not null ? "released" : r.ExpiresAt <= now ? "expired" : "held",
        r.HeldMicroCredits, Math.Min(drawn, r.HeldMicroCredits), r.JobId, r.CreatedAt, r.ExpiresAt, r.ReleasedAt);
}
