using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class IngestionOffRandomBTrees : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_usage_jobs_tenant_credits",
                table: "usage_jobs");

            migrationBuilder.DropIndex(
                name: "ux_usage_events_tenant_event",
                table: "usage_events");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "ix_usage_jobs_tenant_credits",
                table: "usage_jobs",
                columns: new[] { "tenant_id", "micro_credits" });

            migrationBuilder.CreateIndex(
                name: "ux_usage_events_tenant_event",
                table: "usage_events",
                columns: new[] { "tenant_id", "event_id" },
                unique: true);
        }
    }
}
