using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class JobCallsByJobRef : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_usage_events_tenant_job",
                table: "usage_events");

            migrationBuilder.AddColumn<long>(
                name: "job_ref",
                table: "usage_events",
                type: "INTEGER",
                nullable: true);

            // Existing calls point at their job's row. usage_events is append-only; its guard steps aside for this
            // one derived column and is put back in the same migration.
            migrationBuilder.Sql("DROP TRIGGER usage_events_no_update;");
            migrationBuilder.Sql("""
                UPDATE usage_events SET job_ref = (SELECT j.rowid FROM usage_jobs j WHERE j.tenant_id = usage_events.tenant_id AND j.job_id = usage_events.job_id)
                WHERE job_id IS NOT NULL;
                """);
            migrationBuilder.Sql("CREATE TRIGGER usage_events_no_update BEFORE UPDATE ON usage_events BEGIN SELECT RAISE(ABORT, 'usage_events is append-only: rows cannot be updated'); END;");

            migrationBuilder.CreateIndex(
                name: "ix_usage_events_tenant_jobref",
                table: "usage_events",
                columns: new[] { "tenant_id", "job_ref" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_usage_events_tenant_jobref",
                table: "usage_events");

            migrationBuilder.DropColumn(
                name: "job_ref",
                table: "usage_events");

            migrationBuilder.CreateIndex(
                name: "ix_usage_events_tenant_job",
                table: "usage_events",
                columns: new[] { "tenant_id", "job_id" });
        }
    }
}
